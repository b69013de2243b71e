package refbroker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// copier io.Copies what its caller passes, as a plugin copying between
// two objects of its host would.
type copier interface {
	Copy(w io.Writer, r io.Reader) (int64, error)
	CopyClosers(w io.WriteCloser, r io.ReadCloser) (int64, error)
	ReadFrom(w io.Writer, r io.Reader) (int64, error)
	// CopyWhileWriting copies r into w while another goroutine writes p
	// into w times times, and returns what the copy returned.
	CopyWhileWriting(w io.Writer, r io.Reader, p []byte, times int) (int64, error)
}

type copierProxy struct{ *Ref }

func (p copierProxy) Copy(w io.Writer, r io.Reader) (int64, error) {
	var n int64
	err := p.Invoke("Copy", []any{w, r}, &n)
	return n, err
}

func (p copierProxy) CopyClosers(w io.WriteCloser, r io.ReadCloser) (int64, error) {
	var n int64
	err := p.Invoke("CopyClosers", []any{w, r}, &n)
	return n, err
}

func (p copierProxy) ReadFrom(w io.Writer, r io.Reader) (int64, error) {
	var n int64
	err := p.Invoke("ReadFrom", []any{w, r}, &n)
	return n, err
}

func (p copierProxy) CopyWhileWriting(w io.Writer, r io.Reader, b []byte, times int) (int64, error) {
	var n int64
	err := p.Invoke("CopyWhileWriting", []any{w, r, b, times}, &n)
	return n, err
}

func init() { RegisterInterface[copier](func(r *Ref) copier { return copierProxy{r} }) }

type copyingPlugin struct{}

func (copyingPlugin) Copy(w io.Writer, r io.Reader) (int64, error) { return io.Copy(w, r) }
func (copyingPlugin) CopyClosers(w io.WriteCloser, r io.ReadCloser) (int64, error) {
	return io.Copy(w, r)
}
func (copyingPlugin) ReadFrom(w io.Writer, r io.Reader) (int64, error) {
	return w.(io.ReaderFrom).ReadFrom(r)
}

func (copyingPlugin) CopyWhileWriting(w io.Writer, r io.Reader, p []byte, times int) (int64, error) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for range times {
			if _, err := w.Write(p); err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	return io.Copy(w, r)
}

// closingBuffer is a bytes.Buffer with a Close, and a bytes.Reader's
// likewise, for the io.ReadCloser and io.WriteCloser positions.
type closingBuffer struct{ bytes.Buffer }

func (*closingBuffer) Close() error { return nil }

type closingReader struct{ *bytes.Reader }

func (closingReader) Close() error { return nil }

// failingReader returns its data in reads of at most 64 KiB, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p[:min(len(p), 64<<10)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// halfWriter takes half of each write and says nothing of the rest.
type halfWriter struct{ bytes.Buffer }

func (w *halfWriter) Write(p []byte) (int, error) { return w.Buffer.Write(p[:len(p)/2]) }

// TestCopyAtHome: a peer io.Copying a reader of this side into a writer of
// this side gets what io.Copy returns here, data, count and error alike,
// and not a byte crosses: this side serves one call (the copy), not a
// Read and a Write a megabyte.
func TestCopyAtHome(t *testing.T) {
	client, _ := testPair(t, map[string]any{"copier": copyingPlugin{}})
	cp, err := Dispense[copier](client, "copier")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	served := func(f func()) uint64 {
		before := client.Stats().CallsServed
		f()
		return client.Stats().CallsServed - before
	}
	cases := []struct {
		name string
		copy func(w *closingBuffer, r *bytes.Reader) (int64, error)
	}{
		{"io.Copy", func(w *closingBuffer, r *bytes.Reader) (int64, error) { return cp.Copy(w, r) }},
		{"closers", func(w *closingBuffer, r *bytes.Reader) (int64, error) { return cp.CopyClosers(w, closingReader{r}) }},
		{"ReadFrom", func(w *closingBuffer, r *bytes.Reader) (int64, error) { return cp.ReadFrom(w, onlyReads{r}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out closingBuffer
			var n int64
			var err error
			calls := served(func() { n, err = tc.copy(&out, bytes.NewReader(data)) })
			if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
				t.Fatalf("copy = %d, %v; equal = %v", n, err, bytes.Equal(out.Bytes(), data))
			}
			if calls != 1 {
				t.Errorf("the copy made this side serve %d calls; want 1 (the copy itself, its bytes staying here)", calls)
			}
		})
	}
	t.Run("reader fails", func(t *testing.T) {
		var out bytes.Buffer
		r := &failingReader{data: data[:200<<10], err: fmt.Errorf("disk gone: %w", io.ErrUnexpectedEOF)}
		n, err := cp.Copy(&out, r)
		if n != 200<<10 || !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(out.Bytes(), data[:200<<10]) {
			t.Errorf("copy from a failing reader = %d, %v; want %d and its error", n, err, 200<<10)
		}
	})
	t.Run("writer fails", func(t *testing.T) {
		w := &limitedWriter{limit: 100 << 10}
		n, err := cp.Copy(w, bytes.NewReader(data))
		if n != 100<<10 || err == nil || err.Error() != errFull.Error() || !bytes.Equal(w.Bytes(), data[:100<<10]) {
			t.Errorf("copy into a failing writer = %d, %v; want %d and %q", n, err, 100<<10, errFull)
		}
	})
	t.Run("short write", func(t *testing.T) {
		var w halfWriter
		n, err := cp.Copy(&w, bytes.NewReader(data[:1000]))
		if n != 500 || !errors.Is(err, io.ErrShortWrite) {
			t.Errorf("copy into a writer that takes half = %d, %v; want 500, io.ErrShortWrite", n, err)
		}
	})
	t.Run("an older peer", func(t *testing.T) {
		copyHomeServed = false
		defer func() { copyHomeServed = true }()
		var out bytes.Buffer
		var n int64
		var err error
		calls := served(func() { n, err = cp.Copy(&out, bytes.NewReader(data)) })
		if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("copy with a peer that rejects copies at home = %d, %v; equal = %v", n, err, bytes.Equal(out.Bytes(), data))
		}
		if calls < 4 {
			t.Errorf("the copy made this side serve %d calls; want its reads and writes, the copy at home being rejected", calls)
		}
	})
}

// onlyReads hides a reader's WriteTo, so that io.Copy would not take it.
type onlyReads struct{ r io.Reader }

func (o onlyReads) Read(p []byte) (int, error) { return o.r.Read(p) }

// overlapWriter notes whether two Writes ever ran at once.
type overlapWriter struct {
	now     atomic.Int32
	overlap atomic.Bool
	n       atomic.Int64
}

func (w *overlapWriter) Write(p []byte) (int, error) {
	if w.now.Add(1) > 1 {
		w.overlap.Store(true)
	}
	time.Sleep(200 * time.Microsecond) // widen the window two Writes could share
	w.n.Add(int64(len(p)))
	w.now.Add(-1)
	return len(p), nil
}

// TestCopyAtHomeTakesTurns: the Writes of a copy at home take the same
// turns as the peer's Write calls on the same writer, so a peer that
// copies into a writer while also writing to it cannot make this side's
// writer run twice at once.
func TestCopyAtHomeTakesTurns(t *testing.T) {
	client, _ := testPair(t, map[string]any{"copier": copyingPlugin{}})
	cp, err := Dispense[copier](client, "copier")
	if err != nil {
		t.Fatal(err)
	}
	w := &overlapWriter{}
	src := &failingReader{data: make([]byte, 4<<20), err: io.EOF} // 64 Reads
	n, err := cp.CopyWhileWriting(w, src, make([]byte, 1000), 64)
	if err != nil || n != 4<<20 {
		t.Fatalf("copy = %d, %v", n, err)
	}
	if got := w.n.Load(); got != 4<<20+64*1000 {
		t.Errorf("the writer got %d bytes; want %d", got, 4<<20+64*1000)
	}
	if w.overlap.Load() {
		t.Error("the copy's Writes and the peer's ran at once")
	}
}

// endless reads zeros forever, counting its Reads.
type endless struct{ reads atomic.Int64 }

func (e *endless) Read(p []byte) (int, error) {
	e.reads.Add(1)
	clear(p)
	return len(p), nil
}

// TestCopyAtHomeEndsWithThePeer: a copy at home of an endless reader ends
// when the peer that asked for it goes away (a plugin that dies
// mid-copy): it does not go on reading and writing here.
func TestCopyAtHomeEndsWithThePeer(t *testing.T) {
	client, server := testPair(t, map[string]any{"copier": copyingPlugin{}})
	cp, err := Dispense[copier](client, "copier")
	if err != nil {
		t.Fatal(err)
	}
	r := &endless{}
	done := make(chan error, 1)
	go func() {
		_, err := cp.Copy(io.Discard, r)
		done <- err
	}()
	testutil.Eventually(t, "the copy to start reading", func() bool { return r.reads.Load() > 3 })
	server.Close()
	if err := testutil.Receive(t, done, 10*time.Second, "the caller still waits after the peer went away"); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Copy after the peer went away = %v; want ErrDisconnected", err)
	}
	// The copy has stopped once its reader is read no more.
	testutil.Eventually(t, "the copy at home to stop reading", func() bool {
		before := r.reads.Load()
		time.Sleep(50 * time.Millisecond)
		return r.reads.Load() == before
	})
}

// TestCopyAtHomeRefusesOtherReferences: a peer asking for a copy at home
// into a reference that is not a plain writer exported to it (unknown, or
// a reader) gets an error naming it, and nothing is read.
func TestCopyAtHomeRefusesOtherReferences(t *testing.T) {
	src := &pieces{data: []byte("untouched"), size: 4}
	client, _ := testPair(t, map[string]any{"s": streams{r: src, w: io.Discard}})
	s, err := Dispense[streamer](client, "s")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Source()
	if err != nil {
		t.Fatal(err)
	}
	ref := r.(readerProxy).Ref
	for _, id := range []uint64{ref.id, 1 << 40} {
		var n int64
		var copyErr error
		outs := []reflect.Value{reflect.ValueOf(&n).Elem(), reflect.ValueOf(&copyErr).Elem()}
		err := ref.call(context.Background(), copyHomeMethod, []reflect.Value{reflect.ValueOf(id)}, outs)
		if err != nil || copyErr == nil || !strings.Contains(copyErr.Error(), fmt.Sprintf("reference #%d is not a writer exported here", id)) {
			t.Errorf("a copy into reference #%d = %d, %v, %v; want an error naming it", id, n, err, copyErr)
		}
	}
	if src.reads != 0 {
		t.Errorf("the reader was read %d times", src.reads)
	}
}

// stuckReader returns nothing and no error, for ever.
type stuckReader struct{ reads atomic.Int64 }

func (s *stuckReader) Read([]byte) (int, error) { s.reads.Add(1); return 0, nil }

// TestCopyFromAStuckReaderEnds: io.Copy from a peer's reader that returns
// nothing and no error, read after read, fails with io.ErrNoProgress after
// maxEmptyReads of them, as bufio.Reader does, instead of asking for ever.
func TestCopyFromAStuckReaderEnds(t *testing.T) {
	stuck := &stuckReader{}
	r := remoteReader(t, stuck)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		done <- err
	}()
	if err := testutil.Receive(t, done, 10*time.Second, "io.Copy from a stuck reader still asks"); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("io.Copy from a stuck reader = %v; want io.ErrNoProgress", err)
	}
	if n := stuck.reads.Load(); n != maxEmptyReads {
		t.Errorf("the stuck reader was read %d times; want %d", n, maxEmptyReads)
	}
}

// gatedReader blocks its Reads until open is closed, then ends.
type gatedReader struct {
	open    chan struct{}
	reading atomic.Int32
}

func (g *gatedReader) Read([]byte) (int, error) {
	g.reading.Add(1)
	<-g.open
	return 0, io.EOF
}

// TestCopiesAtHomeWaitWithoutBuffers: copies at home waiting for their
// reader's turn hold no buffer, so a peer asking for many at once costs
// this side one megabyte, not one each.
func TestCopiesAtHomeWaitWithoutBuffers(t *testing.T) {
	client, _ := testPair(t, map[string]any{"copier": copyingPlugin{}})
	cp, err := Dispense[copier](client, "copier")
	if err != nil {
		t.Fatal(err)
	}
	const copies = 40
	r := &gatedReader{open: make(chan struct{})}
	before := testutil.HeapAfterGC()
	done := make(chan error, copies)
	for range copies {
		go func() {
			_, err := cp.Copy(io.Discard, r)
			done <- err
		}()
	}
	testutil.Eventually(t, "every copy to be served", func() bool { return client.Stats().Serving == copies })
	testutil.Eventually(t, "a copy to read", func() bool { return r.reading.Load() == 1 })
	grown := int64(testutil.HeapAfterGC()) - int64(before)
	close(r.open)
	for range copies {
		if err := testutil.Receive(t, done, 10*time.Second, "a copy did not end"); err != nil {
			t.Error(err)
		}
	}
	if grown > 8<<20 {
		t.Errorf("%d copies waiting for one reader grew the heap by %d MiB; want about one buffer's megabyte", copies, grown>>20)
	}
}
