package refbroker_test

import (
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/refplug/refplug/refbroker"
)

// Crowd uses what it is given from many goroutines at once, as a buggy
// or hostile peer may.
type Crowd interface {
	Pour(w io.Writer, n int) error
	Drain(r io.Reader, n int) error
	Jumble(rs io.ReadSeeker, n int) error
	Scatter(ra io.ReaderAt, n int) error
	Both(rw io.ReadWriter, n int) error
}

type crowdProxy struct{ *refbroker.Ref }

func (p crowdProxy) Pour(w io.Writer, n int) error  { return p.Invoke("Pour", []any{w, n}) }
func (p crowdProxy) Drain(r io.Reader, n int) error { return p.Invoke("Drain", []any{r, n}) }
func (p crowdProxy) Jumble(rs io.ReadSeeker, n int) error {
	return p.Invoke("Jumble", []any{rs, n})
}
func (p crowdProxy) Scatter(ra io.ReaderAt, n int) error { return p.Invoke("Scatter", []any{ra, n}) }
func (p crowdProxy) Both(rw io.ReadWriter, n int) error  { return p.Invoke("Both", []any{rw, n}) }

func init() {
	refbroker.RegisterInterface[Crowd](func(r *refbroker.Ref) Crowd { return crowdProxy{r} })
}

type crowd struct{}

func (crowd) Pour(w io.Writer, n int) error {
	return all(n, func() error { _, err := w.Write([]byte("x")); return err })
}

func (crowd) Drain(r io.Reader, n int) error {
	return all(n, func() error { _, err := r.Read(make([]byte, 1)); return err })
}

func (crowd) Jumble(rs io.ReadSeeker, n int) error {
	var i atomic.Int32
	return all(n, func() error {
		if i.Add(1)%2 == 0 {
			_, err := rs.Seek(1, io.SeekCurrent)
			return err
		}
		_, err := rs.Read(make([]byte, 1))
		return err
	})
}

func (crowd) Scatter(ra io.ReaderAt, n int) error {
	return all(n, func() error { _, err := ra.ReadAt(make([]byte, 1), 0); return err })
}

func (crowd) Both(rw io.ReadWriter, n int) error {
	var i atomic.Int32
	return all(n, func() error {
		if i.Add(1)%2 == 0 {
			_, err := rw.Write([]byte("x"))
			return err
		}
		_, err := rw.Read(make([]byte, 1))
		return err
	})
}

// all runs f n times at once and returns the first error.
func all(n int, f func() error) error {
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- f() }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// oneAtATime is an io.Reader and io.Writer that records how many of its
// calls ran at once.
type oneAtATime struct{ inside, most atomic.Int32 }

func (o *oneAtATime) enter() {
	n := o.inside.Add(1)
	for m := o.most.Load(); n > m && !o.most.CompareAndSwap(m, n); m = o.most.Load() {
	}
	for range 10 { // stay a while, so that overlapping calls would meet
		runtime.Gosched()
	}
	o.inside.Add(-1)
}

func (o *oneAtATime) Write(p []byte) (int, error) { o.enter(); return len(p), nil }
func (o *oneAtATime) Read(p []byte) (int, error)  { o.enter(); return len(p), nil }
func (o *oneAtATime) ReadAt(p []byte, _ int64) (int, error) {
	o.enter()
	return len(p), nil
}
func (o *oneAtATime) Seek(int64, int) (int64, error) { o.enter(); return 0, nil }

// duplexCounter counts its Reads and its Writes apart.
type duplexCounter struct{ r, w oneAtATime }

func (d *duplexCounter) Read(p []byte) (int, error)  { return d.r.Read(p) }
func (d *duplexCounter) Write(p []byte) (int, error) { return d.w.Write(p) }

// TestBuiltinStreamsAreCalledOneAtATime: an io.Writer's Write, an
// io.Reader's Read, an io.ReadSeeker's Read and Seek, an io.ReaderAt's
// ReadAt, and an io.ReadWriter's Reads (and its Writes) that cross are
// never called at once, however many of
// the peer's goroutines call them: most are not safe for concurrent use,
// and a peer must not make this side race on them.
func TestBuiltinStreamsAreCalledOneAtATime(t *testing.T) {
	client, _ := refbroker.NewPair(t, refbroker.Options{Roots: map[string]any{"crowd": crowd{}}}, refbroker.Options{})
	c, err := refbroker.Dispense[Crowd](client, "crowd")
	if err != nil {
		t.Fatal(err)
	}
	// An io.ReadWriter's reads run one at a time, and its writes, but a
	// read and a write may run at once (scenario.Duplex needs them to).
	rw := &duplexCounter{}
	if err := c.Both(rw, 32); err != nil {
		t.Fatal(err)
	}
	if r, w := rw.r.most.Load(), rw.w.most.Load(); r != 1 || w != 1 {
		t.Errorf("%d Reads and %d Writes of one io.ReadWriter ran at once; want 1 each", r, w)
	}
	for _, tc := range []struct {
		calls string
		use   func(o *oneAtATime) error
	}{
		{"Writes of one io.Writer", func(o *oneAtATime) error { return c.Pour(o, 32) }},
		{"Reads of one io.Reader", func(o *oneAtATime) error { return c.Drain(o, 32) }},
		{"Reads and Seeks of one io.ReadSeeker", func(o *oneAtATime) error { return c.Jumble(o, 32) }},
		{"ReadAts of one io.ReaderAt", func(o *oneAtATime) error { return c.Scatter(o, 32) }},
	} {
		o := &oneAtATime{}
		if err := tc.use(o); err != nil {
			t.Fatal(err)
		}
		if got := o.most.Load(); got != 1 {
			t.Errorf("%d %s ran at once; want 1", got, tc.calls)
		}
	}
}

// TestBuiltinRootsAreCalledOneAtATime: a root object dispensed as an
// io.Reader or an io.Writer, however many times, is one export, so its
// Reads (or Writes) take turns across every Dispense of it, as they do
// when it is passed as an argument.
func TestBuiltinRootsAreCalledOneAtATime(t *testing.T) {
	r, w := &oneAtATime{}, &oneAtATime{}
	client, _ := refbroker.NewPair(t, refbroker.Options{Roots: map[string]any{"r": r, "w": w}}, refbroker.Options{})
	var readers []io.Reader
	var writers []io.Writer
	for range 4 {
		rr, err := refbroker.Dispense[io.Reader](client, "r")
		if err != nil {
			t.Fatal(err)
		}
		ww, err := refbroker.Dispense[io.Writer](client, "w")
		if err != nil {
			t.Fatal(err)
		}
		readers, writers = append(readers, rr), append(writers, ww)
	}
	var i atomic.Int32
	err := all(32, func() error {
		k := int(i.Add(1))
		if k%2 == 0 {
			_, err := writers[k%4].Write([]byte("x"))
			return err
		}
		_, err := readers[k%4].Read(make([]byte, 1))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rm, wm := r.most.Load(), w.most.Load(); rm != 1 || wm != 1 {
		t.Errorf("%d Reads of the root reader and %d Writes of the root writer ran at once; want 1 each", rm, wm)
	}
}
