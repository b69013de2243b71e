package scenario

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/testdata/contract"
)

// RandomAccess: the built-in io.ReaderAt, io.ReadSeeker,
// io.ReadSeekCloser and io.WriterAt proxies, both ways. The callee opens a
// zip archive from the caller's io.ReaderAt (archive/zip reads its
// directory from the end, then each file), seeks the caller's
// io.ReadSeeker to its end and back, writes into the caller's io.WriterAt
// back to front (more than a megabyte, so in several calls); the caller
// seeks and reads the callee's io.ReadSeekCloser.
func RandomAccess(t *testing.T, svc contract.Service) {
	want := map[string]string{"a.txt": "alpha", "b/c.txt": string(contract.Pattern(300 << 10))}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, name := range []string{"a.txt", "b/c.txt"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, want[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := svc.Unzip(bytes.NewReader(zbuf.Bytes()), int64(zbuf.Len()))
	if err != nil || len(got) != len(want) || got["a.txt"] != want["a.txt"] || got["b/c.txt"] != want["b/c.txt"] {
		t.Errorf("Unzip through the caller's io.ReaderAt: %d files, %v; want %d, equal", len(got), err, len(want))
	}
	if _, err := svc.Unzip(bytes.NewReader([]byte("not a zip archive")), 17); err == nil || !bytes.Contains([]byte(err.Error()), []byte("zip")) {
		t.Errorf("Unzip of a non-archive = %v; want archive/zip's error", err)
	}

	data := contract.Pattern(2<<20 + 77)
	size, rest, err := svc.Tail(bytes.NewReader(data), 1<<20)
	if err != nil || size != int64(len(data)) || !bytes.Equal(rest, data[1<<20:]) {
		t.Errorf("Tail through the caller's io.ReadSeeker = %d, %d bytes, %v; want %d, the %d bytes after 1 MiB", size, len(rest), err, len(data), len(data)-1<<20)
	}
	if _, _, err := svc.Tail(bytes.NewReader(data), -1); err == nil {
		t.Error("Tail seeking to -1: no error; want bytes.Reader's")
	}

	rs, err := svc.OpenSeekable(5000)
	if err != nil {
		t.Fatal(err)
	}
	want5 := contract.Pattern(5000)
	if pos, err := rs.Seek(-100, io.SeekEnd); pos != 4900 || err != nil {
		t.Errorf("Seek(-100, io.SeekEnd) = %d, %v; want 4900", pos, err)
	}
	if b, err := io.ReadAll(rs); err != nil || !bytes.Equal(b, want5[4900:]) {
		t.Errorf("reading the last 100 bytes: %d, %v", len(b), err)
	}
	if pos, err := rs.Seek(10, io.SeekStart); pos != 10 || err != nil {
		t.Errorf("Seek(10, io.SeekStart) = %d, %v", pos, err)
	}
	p := make([]byte, 20)
	if n, err := io.ReadFull(rs, p); n != 20 || err != nil || !bytes.Equal(p, want5[10:30]) {
		t.Errorf("ReadFull after seeking = %d, %v", n, err)
	}
	if err := rs.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	const n = 1<<20 + 4321
	for _, chunk := range []int{700 << 10, n} { // a WriteAt of more than a megabyte crosses as two
		w := &atWriter{}
		if err := svc.Backwards(w, n, chunk); err != nil || !bytes.Equal(w.bytes(), contract.Pattern(n)) {
			t.Errorf("Backwards into the caller's io.WriterAt, %d bytes a write: %v; equal = %v", chunk, err, bytes.Equal(w.bytes(), contract.Pattern(n)))
		}
	}
	if err := svc.Backwards(failingWriterAt{}, 10, 5); err == nil || err.Error() != "disk full" {
		t.Errorf("Backwards into a failing io.WriterAt = %v; want its error, disk full", err)
	}
}

// BrokenStreams: a caller's stream that panics fails the callee's call
// on it with an error naming the method the callee called
// (io.ReaderAt.ReadAt, io.ReadSeeker.Seek), not the one refbroker
// carries it as (readerAtWire.ReadSpan, readSeekerWire.Seek), and the
// caller goes on serving.
func BrokenStreams(t *testing.T, svc contract.Service) {
	_, err := svc.Unzip(burningStream{}, 1000)
	if err == nil || !strings.Contains(err.Error(), "io.ReaderAt.ReadAt panicked: the disk caught fire") || strings.Contains(err.Error(), "Wire") {
		t.Errorf("Unzip through an io.ReaderAt that panics = %v; want an error naming io.ReaderAt.ReadAt and the panic", err)
	}
	_, _, err = svc.Tail(burningStream{}, 10)
	if err == nil || !strings.Contains(err.Error(), "io.ReadSeeker.Seek panicked: the disk caught fire") || strings.Contains(err.Error(), "Wire") {
		t.Errorf("Tail through an io.ReadSeeker that panics = %v; want an error naming io.ReadSeeker.Seek and the panic", err)
	}
	if got, err := svc.Unzip(bytes.NewReader([]byte("not a zip archive")), 17); err == nil || got != nil {
		t.Errorf("Unzip after the panics = %v, %v; want archive/zip's error (the caller still serves)", got, err)
	}
}

// burningStream panics in every method.
type burningStream struct{}

func (burningStream) Read([]byte) (int, error)          { panic("the disk caught fire") }
func (burningStream) ReadAt([]byte, int64) (int, error) { panic("the disk caught fire") }
func (burningStream) Seek(int64, int) (int64, error)    { panic("the disk caught fire") }

// atWriter is an io.WriterAt into memory.
type atWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *atWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := int(off) + len(p); end > len(w.buf) {
		w.buf = append(w.buf, make([]byte, end-len(w.buf))...)
	}
	return copy(w.buf[off:], p), nil
}

func (w *atWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf
}

type failingWriterAt struct{}

func (failingWriterAt) WriteAt([]byte, int64) (int, error) { return 0, fmt.Errorf("disk full") }

// Duplex: the caller hands the callee one end of a connection (net.Pipe,
// an io.ReadWriteCloser) and answers on the other; the callee reads on
// one goroutine, blocked until the answers come, while it writes on
// another. The built-in proxy lets a read and a write run at once (reads
// one at a time, writes one at a time): were they one at a time
// together, the blocked read would hold up the writes that bring its
// data, and the call would never return.
func Duplex(t *testing.T, svc contract.Service) {
	const n = 3
	mine, theirs := net.Pipe()
	defer mine.Close()
	go func() { // answer each line, upper-cased; hang up after the n-th
		sc := bufio.NewScanner(mine)
		for i := 0; i < n && sc.Scan(); i++ {
			if _, err := fmt.Fprintf(mine, "%s\n", strings.ToUpper(sc.Text())); err != nil {
				return
			}
		}
		mine.Close()
	}()
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := svc.Chat(theirs, n)
		done <- result{s, err}
	}()
	r := testutil.Receive(t, done, 30*time.Second, "Chat over the caller's connection did not return: its reads and writes wait for each other")
	if r.err != nil || r.s != "MSG 0\nMSG 1\nMSG 2\n" {
		t.Errorf("Chat = %q, %v; want the three answers", r.s, r.err)
	}
}
