package contract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/refplug/refplug/refbroker"
)

// NewService returns the Service the test plugin serves. stats, if not
// nil, reports the serving connection's counts for Health.
func NewService(stats func() refbroker.Stats) Service {
	return &service{unhang: make(chan struct{}), stats: stats}
}

type service struct {
	stats     func() refbroker.Stats
	consumed  *consumer
	mu        sync.Mutex
	kept      Thing
	cancelled int
	reason    [2]string // Err and Cause of the last Wait's context
	unhang    chan struct{}
	unhangOne sync.Once
	gates     map[string]*gate // guarded by mu
	hoard     []Counter        // guarded by mu
}

type gate struct {
	open    chan struct{}
	opened  bool
	waiting int
}

// gate returns the named gate; s.mu is locked.
func (s *service) gate(name string) *gate {
	if s.gates == nil {
		s.gates = map[string]*gate{}
	}
	g := s.gates[name]
	if g == nil {
		g = &gate{open: make(chan struct{})}
		s.gates[name] = g
	}
	return g
}

func (s *service) Block(name string) error {
	s.mu.Lock()
	g := s.gate(name)
	g.waiting++
	s.mu.Unlock()
	<-g.open
	s.mu.Lock()
	g.waiting--
	s.mu.Unlock()
	return nil
}

func (s *service) Blocked(name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gate(name).waiting > 0, nil
}

func (s *service) Open(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.gate(name); !g.opened {
		g.opened = true
		close(g.open)
	}
	return nil
}

func (s *service) Echo(d Doc) (Doc, error) { return d, nil }

func (s *service) Sum(xs ...int) (int, error) {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t, nil
}

func (s *service) Lookup(key string) (string, error) {
	if key == "answer" {
		return "42", nil
	}
	return "", fmt.Errorf("lookup %q: %w", key, ErrNotFound)
}

func (s *service) Apply(fn func(int) int, n int) (int, error) { return fn(n), nil }

func (s *service) OpenFile(path string) error {
	f, err := os.Open(path)
	if err == nil {
		f.Close()
	}
	return err
}

func (s *service) Fail(code int) error {
	return fmt.Errorf("failing on purpose: %w", &CodeError{Code: code, Msg: "as asked"})
}

func (s *service) ApplyN(fn func(int) int, times int) (int, error) {
	v := 0
	for range times {
		v = fn(v)
	}
	return v, nil
}

func (s *service) Fanout(sinks []Sink, byName map[string]Sink, msg string) error {
	for i, k := range sinks {
		if err := k.Put(fmt.Sprintf("%s#%d", msg, i)); err != nil {
			return fmt.Errorf("sink %d: %w", i, err)
		}
	}
	for name, k := range byName {
		if err := k.Put(msg + "@" + name); err != nil {
			return fmt.Errorf("sink %q: %w", name, err)
		}
	}
	return nil
}

func (s *service) CallFields(d Doc) error {
	if d.OnSave == nil || d.Sink == nil {
		return fmt.Errorf("CallFields: OnSave or Sink is nil")
	}
	if err := d.OnSave(d.ID); err != nil {
		return err
	}
	return d.Sink.Put(d.ID)
}

type counter struct {
	mu    sync.Mutex
	label string
	n     int
}

func (c *counter) Add(n int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += n
	return c.n, nil
}

func (c *counter) Child(name string) (Counter, error) {
	return &counter{label: c.label + "/" + name}, nil
}

func (c *counter) Label() (string, error) { return c.label, nil }

func (s *service) NewCounter(name string) (Counter, error) { return &counter{label: name}, nil }

func (s *service) Hoard(f Factory, n int) (int, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got, first := 0, ""
	for i := range n {
		c, err := f.NewCounter(fmt.Sprint("hoarded ", i))
		if err != nil {
			if first == "" {
				first = err.Error()
			}
			continue
		}
		s.hoard = append(s.hoard, c)
		got++
	}
	return got, first, nil
}

func (s *service) IsMine(c Counter) (bool, error) {
	_, ok := c.(*counter)
	return ok, nil
}

func (s *service) Keep(t Thing) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	same := s.kept != nil && s.kept == t
	s.kept = t
	return same, nil
}

func (s *service) Kept() (Thing, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kept, nil
}

func (s *service) Same(t Thing) (Thing, error) { return t, nil }

func (s *service) EchoAny(v any) (any, error) { return v, nil }

// Wait calls started, then waits until ctx is done.
func (s *service) Wait(ctx context.Context, started func()) error {
	started()
	<-ctx.Done()
	s.mu.Lock()
	s.cancelled++
	s.reason = [2]string{fmt.Sprint(ctx.Err()), fmt.Sprint(context.Cause(ctx))}
	s.mu.Unlock()
	return ctx.Err()
}

func (s *service) Schedule(ctx context.Context, name string, opts ...JobOption) (string, error) {
	j := Job{Name: name}
	for _, o := range opts {
		o(&j)
	}
	if j.OnDone == nil || j.Log == nil {
		return "", fmt.Errorf("the options set no OnDone or no Log: %+v", j)
	}
	if err := j.OnDone(fmt.Sprintf("%s after %d tries", j.Name, j.Tries)); err != nil {
		return "", err
	}
	_, err := fmt.Fprintf(j.Log, "ran %s", j.Name)
	return j.Name, err
}

func (s *service) Visit(paths []string, fn func(path string) error) error {
	for _, p := range paths {
		if err := fn(p); err != nil {
			return fmt.Errorf("visit %s: %w", p, err)
		}
	}
	return nil
}

func (s *service) Upload(ctx context.Context, data []byte) (int, error) { return len(data), nil }

func (s *service) GetUser(id string) (*User, *AppError) {
	if id == "known" {
		return &User{ID: id, Name: "Known"}, nil
	}
	return nil, &AppError{Message: "no user " + id, Status: 404}
}

func (s *service) PanicUser() (*User, *AppError) { panic("no users today") }

func (s *service) After(d time.Duration) (string, error) { return d.String(), nil }

func (s *service) Fill(cfg *Settings) error {
	cfg.Name, cfg.Level = "filled", cfg.Level+1
	cfg.Tags = append(cfg.Tags, "plugin")
	return nil
}

func (s *service) FillAny(dest any) error {
	return json.Unmarshal([]byte(`{"Name":"from json","Level":7}`), dest)
}

func (s *service) Print(text string) error {
	fmt.Println(text)
	_, err := os.Stderr.Write([]byte("err: " + text + "\n"))
	return err
}

func (s *service) Logs(msg string) error {
	l := slog.With("svc", 1).WithGroup("g")
	l.Debug(msg, "at", "debug")
	slog.Info(msg, "n", 2, slog.Group("grp", "a", true))
	slog.Warn(msg)
	l.Error(msg, "err", errors.New("boom"))
	log.Printf("%s via log", msg)
	return nil
}

func (s *service) Reason() (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason[0], s.reason[1], nil
}

func (s *service) LaunderAny(x Sink) (any, error) { return x, nil }

// LaunderCloser wraps the caller's proxy so that it has a Close method and
// still carries the caller's reference: sent back, it goes home.
func (s *service) LaunderCloser(x Sink) (io.Closer, error) {
	p, ok := x.(sinkProxy)
	if !ok {
		return nil, fmt.Errorf("LaunderCloser: %T is not a proxy", x)
	}
	return laundered{p}, nil
}

type laundered struct{ sinkProxy }

func (laundered) Close() error { return nil }

func (s *service) Flood(fn func() error, n int) (int, string, error) {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
		first  string
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				mu.Lock()
				if failed++; first == "" {
					first = err.Error()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed, first, nil
}

func (s *service) Deadline(ctx context.Context) (time.Duration, bool, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, false, nil
	}
	return time.Until(dl), true, nil
}

func (s *service) Cancelled() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled, nil
}

// Hang ignores its context and returns only after Unhang.
func (s *service) Hang(ctx context.Context) error {
	<-s.unhang
	return nil
}

func (s *service) Unhang() error {
	s.unhangOne.Do(func() { close(s.unhang) })
	return nil
}

func (s *service) Panic(msg string) (int, error) { panic(msg) }

func (s *service) Bounce(h Host, depth int) (int, error) {
	if depth <= 0 {
		return 0, nil
	}
	n, err := h.Ping(depth - 1)
	if err != nil {
		return 0, err
	}
	return n + 1, nil
}

// Narrow reports what the plugin could do with t beyond Thing.
func (s *service) Narrow(t Thing) (string, error) {
	var got []string
	if _, ok := t.(interface{ Secret() string }); ok {
		got = append(got, "asserted Secret")
	}
	if p, ok := t.(thingProxy); ok {
		var secret string
		if err := p.Invoke("Secret", nil, &secret); err != nil {
			got = append(got, "Invoke refused: "+err.Error())
		} else {
			got = append(got, "Invoke got "+secret)
		}
	}
	return strings.Join(got, "; "), nil
}

func (s *service) Observe(fn func(string)) error {
	fn("observed")
	return nil
}

func (s *service) Later(fn func(int), n int) error {
	started := make(chan struct{})
	go func() {
		close(started)
		fn(n)
	}()
	<-started
	return nil
}

func (s *service) Exit(code int) error {
	os.Exit(code)
	return nil
}

func (s *service) Pid() (int, error) { return os.Getpid(), nil }

func (s *service) Health() (Health, error) {
	runtime.GC()
	h := Health{Goroutines: runtime.NumGoroutine()}
	if s.stats != nil {
		h.Stats = s.stats()
	}
	return h, nil
}

func (s *service) Describe(x fmt.Stringer) (string, error) { return "described: " + x.String(), nil }

func (s *service) Count(n int) (iter.Seq[int], error) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}, nil
}

func (s *service) Enumerate(words []string) (iter.Seq2[int, string], error) {
	return func(yield func(int, string) bool) {
		for i, w := range words {
			if !yield(i, w) {
				return
			}
		}
	}, nil
}

func (s *service) OpenTally(limit int64) (Tally, error) { return &tally{limit: limit}, nil }

type tally struct {
	mu    sync.Mutex
	got   []byte
	limit int64
}

func (t *tally) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := int(min(int64(len(p)), t.limit-int64(len(t.got))))
	t.got = append(t.got, p[:n]...)
	if n < len(p) {
		return n, errors.New("tally: full")
	}
	return n, nil
}

func (t *tally) Got() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.got, nil
}
