package refbroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
)

// job is set up by functional options: data holding a func and an
// object, as Go's options often are.
type job struct {
	Name   string
	Tries  int
	OnDone func(result string) error
	Log    io.Writer
}

type jobOption func(*job)

// jobs takes pointers to data holding references: to be restored after
// the call as plain out-parameters are.
type jobs interface {
	// Run applies opts to a new job, then calls its OnDone and writes to
	// its Log.
	Run(ctx context.Context, opts ...jobOption) (string, error)
	// Prepare gives j a hook of the callee's and a name, keeping its Log.
	Prepare(j *job) error
	// Open points *w at a writer of the callee's.
	Open(w *io.Writer) error
	// Configure fills dest (an any holding a *job) as Prepare does.
	Configure(dest any) error
}

type jobsProxy struct{ *Ref }

func (p jobsProxy) Run(ctx context.Context, opts ...jobOption) (string, error) {
	var s string
	err := p.Invoke("Run", []any{ctx, opts}, &s)
	return s, err
}
func (p jobsProxy) Prepare(j *job) error     { return p.Invoke("Prepare", []any{j}) }
func (p jobsProxy) Open(w *io.Writer) error  { return p.Invoke("Open", []any{w}) }
func (p jobsProxy) Configure(dest any) error { return p.Invoke("Configure", []any{dest}) }

func init() {
	RegisterInterface[jobs](func(r *Ref) jobs { return jobsProxy{r} })
	RegisterType(&job{})
}

// jobsImpl records what reaches it.
type jobsImpl struct {
	mu   sync.Mutex
	done []string
	log  strings.Builder
}

func (s *jobsImpl) Run(ctx context.Context, opts ...jobOption) (string, error) {
	var j job
	for _, o := range opts {
		o(&j)
	}
	if j.OnDone == nil || j.Log == nil {
		return "", fmt.Errorf("the options set OnDone %v and Log %v", j.OnDone != nil, j.Log != nil)
	}
	if err := j.OnDone(fmt.Sprintf("%s after %d tries", j.Name, j.Tries)); err != nil {
		return "", err
	}
	_, err := io.WriteString(j.Log, "ran "+j.Name)
	return j.Name, err
}

func (s *jobsImpl) Prepare(j *job) error {
	j.Name += " prepared"
	j.OnDone = func(r string) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.done = append(s.done, r)
		return nil
	}
	return nil
}

func (s *jobsImpl) Open(w *io.Writer) error { *w = &lockedWriter{mu: &s.mu, w: &s.log}; return nil }

func (s *jobsImpl) Configure(dest any) error {
	j, ok := dest.(*job)
	if !ok {
		return fmt.Errorf("dest is %T", dest)
	}
	return s.Prepare(j)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestOutParamsHoldingReferences: a pointer to data holding funcs and
// objects is restored as one to plain data is, its references crossing as
// a result's do: functional options that set hooks reach the callee's
// value, a hook the callee sets reaches the caller's, and the caller's own
// objects come home as themselves.
func TestOutParamsHoldingReferences(t *testing.T) {
	impl := &jobsImpl{}
	client, _ := testPair(t, map[string]any{"jobs": impl})
	js, err := Dispense[jobs](client, "jobs")
	if err != nil {
		t.Fatal(err)
	}

	// Options (funcs of this side) set a hook and a writer of this side
	// into the callee's job.
	var got []string
	var log strings.Builder
	name, err := js.Run(context.Background(),
		func(j *job) { j.Name = "build" },
		func(j *job) { j.OnDone = func(r string) error { got = append(got, r); return nil } },
		func(j *job) { j.Log = &log; j.Tries++ },
		func(j *job) { j.Tries++ },
	)
	if err != nil || name != "build" {
		t.Fatalf("Run = %q, %v; want build", name, err)
	}
	if want := []string{"build after 2 tries"}; !slices.Equal(got, want) {
		t.Errorf("OnDone got %q; want %q", got, want)
	}
	if log.String() != "ran build" {
		t.Errorf("Log got %q; want %q", log.String(), "ran build")
	}

	// The callee sets a hook of its own; the caller's writer comes home
	// as itself.
	var mine strings.Builder
	j := job{Name: "deploy", Log: &mine}
	if err := js.Prepare(&j); err != nil {
		t.Fatal(err)
	}
	if j.Name != "deploy prepared" || j.OnDone == nil || j.Log != io.Writer(&mine) {
		t.Fatalf("after Prepare: %+v; want the name and a hook set, Log still this side's own writer", j)
	}
	if err := j.OnDone("ok"); err != nil {
		t.Fatal(err)
	}
	impl.mu.Lock()
	done := append([]string(nil), impl.done...)
	impl.mu.Unlock()
	if !slices.Equal(done, []string{"ok"}) {
		t.Errorf("the callee's hook got %q; want [ok]", done)
	}

	// A pointer to an interface: the callee's writer.
	var w io.Writer
	if err := js.Open(&w); err != nil || w == nil {
		t.Fatalf("Open = %v, w = %v; want a writer", err, w)
	}
	if _, err := io.WriteString(w, "hello"); err != nil {
		t.Fatal(err)
	}
	impl.mu.Lock()
	logged := impl.log.String()
	impl.mu.Unlock()
	if logged != "hello" {
		t.Errorf("the callee's writer got %q; want hello", logged)
	}

	// In an any, as a registered pointer.
	var k job
	if err := js.Configure(&k); err != nil || k.Name != " prepared" || k.OnDone == nil {
		t.Errorf("Configure(&k) = %v, k = %+v; want it prepared", err, k)
	}
}

// releasingJobs releases the hook it got in a job before returning.
type releasingJobs struct{ jobsImpl }

func (s *releasingJobs) Prepare(j *job) error {
	Release(j.OnDone)
	j.Name = "released"
	return nil
}

// TestOutParamReleasedByTheCallee: a reference the callee released cannot
// be sent back in the restored value, and the call says so.
func TestOutParamReleasedByTheCallee(t *testing.T) {
	client, _ := testPair(t, map[string]any{"jobs": &releasingJobs{}})
	js, err := Dispense[jobs](client, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	hook := func(string) error { return nil }
	j := job{Name: "mine", OnDone: hook}
	err = js.Prepare(&j)
	if err == nil || !errors.Is(err, ErrReleased) || !strings.Contains(err.Error(), "out-parameter 1") {
		t.Fatalf("Prepare = %v; want ErrReleased naming out-parameter 1", err)
	}
	if j.Name != "mine" || j.OnDone == nil {
		t.Errorf("after the failed restore: %+v; want the caller's job untouched", j)
	}
}
