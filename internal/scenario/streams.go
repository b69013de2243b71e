package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/refplug/refplug/testdata/contract"
)

// Streams: multi-megabyte copies through io.Reader and io.Writer proxies,
// both ways.
func Streams(t *testing.T, svc contract.Service) {
	data := contract.Pattern(4<<20 + 123)
	var out bytes.Buffer
	n, err := svc.Copy(&out, bytes.NewReader(data)) // the plugin reads and writes the host's
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("Copy through the plugin: %d bytes, %v; equal = %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	rc, err := svc.Producer(3 << 20) // the host reads the plugin's
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, contract.Pattern(3<<20)) {
		t.Errorf("reading the plugin's reader: %d bytes, %v", len(got), err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wc, err := svc.Consumer() // the host writes to the plugin's
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(wc, bytes.NewReader(data)); err != nil {
		t.Errorf("writing to the plugin's writer: %v", err)
	}
	if err := wc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	cn, sum, closed, err := svc.Consumed()
	if err != nil || cn != len(data) || sum != contract.Sum(data) || !closed {
		t.Errorf("Consumed = %d, closed %v, %v; want %d bytes, the same checksum, closed", cn, closed, err, len(data))
	}
}

// StreamEnds: io.Copy between a stream of one side and a stream of the
// other ends as it would in one process. The callee copies the caller's
// reader into a writer of its own: every byte before the reader's error
// arrives, and the copy returns that count and the error's text; a last
// Read that returns its bytes with io.EOF, and Reads that return nothing
// and no error, lose nothing. The callee copies a reader of its own into
// the caller's writer that fills up: the copy returns what the writer
// took and its error, and the writer is not written to after it failed.
func StreamEnds(t *testing.T, svc contract.Service) {
	data := contract.Pattern(3<<20 + 17)
	for _, tc := range []struct {
		name    string
		r       io.Reader
		n       int
		wantErr string
	}{
		{"an error after 3 MiB + 17", &endsWith{r: bytes.NewReader(data), err: errors.New("tape jammed")}, len(data), "tape jammed"},
		{"io.ErrUnexpectedEOF after 3 MiB + 17", &endsWith{r: bytes.NewReader(data), err: io.ErrUnexpectedEOF}, len(data), io.ErrUnexpectedEOF.Error()},
		{"the last bytes with io.EOF", iotest.DataErrReader(bytes.NewReader(data)), len(data), ""},
		{"empty reads first, then short ones", &endsWith{r: iotest.HalfReader(bytes.NewReader(data)), err: io.EOF, empty: 3}, len(data), ""},
	} {
		wc, err := svc.Consumer()
		if err != nil {
			t.Fatal(err)
		}
		n, err := svc.Copy(wc, tc.r)
		if n != int64(tc.n) || errText(err) != tc.wantErr {
			t.Errorf("%s: the callee's io.Copy = %d, %v; want %d, %q", tc.name, n, err, tc.n, tc.wantErr)
		}
		if cn, sum, _, err := svc.Consumed(); err != nil || cn != tc.n || sum != contract.Sum(data[:tc.n]) {
			t.Errorf("%s: the callee's writer got %d bytes (%v); want the %d read, equal", tc.name, cn, err, tc.n)
		}
	}

	produced := contract.Pattern(3 << 20) // what Producer(3 << 20) reads
	for _, limit := range []int{0, 5, 1<<20 + 5} {
		rc, err := svc.Producer(len(produced))
		if err != nil {
			t.Fatal(err)
		}
		w := &fillingWriter{limit: limit}
		n, err := svc.Copy(w, rc)
		if n != int64(limit) || errText(err) != "disk full" {
			t.Errorf("a copy into the caller's writer that takes %d bytes = %d, %v; want %d, disk full", limit, n, err, limit)
		}
		if !bytes.Equal(w.got.Bytes(), produced[:limit]) || w.afterFull > 0 {
			t.Errorf("the caller's writer that takes %d bytes got %d (equal: %v) and %d writes after it was full; want the first %d, none after", limit, w.got.Len(), bytes.Equal(w.got.Bytes(), produced[:min(limit, w.got.Len())]), w.afterFull, limit)
		}
		rc.Close()
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// endsWith reads r, returning err instead of io.EOF, after empty reads
// (0, nil) to begin with.
type endsWith struct {
	r     io.Reader
	err   error
	empty int
}

func (e *endsWith) Read(p []byte) (int, error) {
	if e.empty > 0 {
		e.empty--
		return 0, nil
	}
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

// fillingWriter takes limit bytes, then fails; it counts the writes made
// after it failed.
type fillingWriter struct {
	got       bytes.Buffer
	limit     int
	full      bool
	afterFull int
}

func (w *fillingWriter) Write(p []byte) (int, error) {
	if w.full {
		w.afterFull++
	}
	n := min(len(p), w.limit-w.got.Len())
	w.got.Write(p[:n])
	if n < len(p) {
		w.full = true
		return n, errors.New("disk full")
	}
	return n, nil
}

type stringer string

func (s stringer) String() string { return string(s) }

// BuiltinInterfaces: fmt.Stringer crosses without a contract proxy, and an
// iter.Seq result works as the func it is, early stop included.
func BuiltinInterfaces(t *testing.T, svc contract.Service) {
	if got, err := svc.Describe(stringer("me")); err != nil || got != "described: me" {
		t.Errorf("Describe = %q, %v", got, err)
	}
	seq, err := svc.Count(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for v := range seq {
		got = append(got, v)
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Errorf("ranging over the plugin's iter.Seq: %v", got)
	}
	got = nil
	for v := range seq {
		if v == 3 {
			break
		}
		got = append(got, v)
	}
	if fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("breaking out of the plugin's iter.Seq: %v", got)
	}
	seq2, err := svc.Enumerate([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for i, w := range seq2 {
		pairs = append(pairs, fmt.Sprintf("%d:%s", i, w))
	}
	if fmt.Sprint(pairs) != "[0:a 1:b]" {
		t.Errorf("ranging over the plugin's iter.Seq2: %v", pairs)
	}
}
