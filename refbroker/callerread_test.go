package refbroker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// Tests of callers reading their own returns (reader.go).

// trickle delivers what the other side writes a little at a time, so that
// a large return takes a while to read.
type trickle struct{ net.Conn }

func (t trickle) Read(b []byte) (int, error) {
	time.Sleep(20 * time.Microsecond)
	return t.Conn.Read(b[:min(len(b), 4<<10)])
}

// quietPair is a client that serves nothing (so its callers read) and a
// server serving roots; the client reads through wrap.
func quietPair(t *testing.T, roots map[string]any, wrap func(net.Conn) net.Conn) (client, server *Conn) {
	t.Helper()
	a, b := net.Pipe()
	server = NewConn(a, Options{Roots: roots})
	client = NewConn(wrap(b), Options{})
	client.rd.Lock()
	client.rd.idleAfter = time.Minute // the role stays free between calls
	client.rd.Unlock()
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

func noWrap(c net.Conn) net.Conn { return c }

// roleIs reports whether c's reader role is held as role.
func roleIs(c *Conn, role int) func() bool {
	return func() bool {
		c.rd.Lock()
		defer c.rd.Unlock()
		return c.rd.holder == role
	}
}

// TestCallersReadTheirReturns: on a side that serves nothing, once the
// first return is in, the reader role is left free between calls, and
// calls work, in sequence and at once.
func TestCallersReadTheirReturns(t *testing.T) {
	client, _ := quietPair(t, map[string]any{"s": streams{}}, noWrap)
	if !client.rd.callers {
		t.Fatal("callers do not read on a side that serves nothing, over net.Pipe")
	}
	s, err := Dispense[streamer](client, "s")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		b, err := s.Chunk(100, i)
		if want, _ := (streams{}).Chunk(100, i); err != nil || !bytes.Equal(b, want) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	testutil.Eventually(t, "the reader role to be free between calls", roleIs(client, roleFree))
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				b, err := s.Chunk(bigBytes+g, i)
				if want, _ := (streams{}).Chunk(bigBytes+g, i); err == nil && !bytes.Equal(b, want) {
					err = errors.New("wrong data")
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Errorf("concurrent calls: %v", err)
		}
	}
}

// TestCallerReadingInterrupted: a caller whose context ends while it reads
// a large return returns at once; the frame it left half read is finished
// by the next reader, and later calls get their own, whole returns.
func TestCallerReadingInterrupted(t *testing.T) {
	client, _ := quietPair(t, map[string]any{"g": getterImpl{}}, func(c net.Conn) net.Conn { return trickle{c} })
	g, err := Dispense[getter](client, "g")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Get(context.Background(), 10, 0); err != nil { // the role is free after this
		t.Fatal(err)
	}
	testutil.Eventually(t, "the reader role to be free", roleIs(client, roleFree))
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i+1)*time.Millisecond)
		start := time.Now()
		_, err := g.Get(ctx, 2<<20, i)
		cancel()
		if elapsed := time.Since(start); err == nil || elapsed > time.Second {
			t.Fatalf("a 2 MiB return through a trickle with a %d ms deadline: %v after %v; want the deadline, at once", i+1, err, elapsed)
		}
		got, err := g.Get(context.Background(), 3<<10, 100+i)
		if want, _ := (streams{}).Chunk(3<<10, 100+i); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("the call after an interrupted read: %v (equal %v)", err, bytes.Equal(got, want))
		}
	}
}

// TestQuietSideNoticesPeerGone: with the reader role free between calls,
// the connection still ends soon after the peer goes away (a reader
// goroutine takes the role back after idleRead).
func TestQuietSideNoticesPeerGone(t *testing.T) {
	client, server := quietPair(t, map[string]any{"s": streams{}}, noWrap)
	client.rd.Lock()
	client.rd.idleAfter = idleRead
	client.rd.Unlock()
	s, err := Dispense[streamer](client, "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Chunk(10, 0); err != nil {
		t.Fatal(err)
	}
	closeAndAwaitNotice(t, client, server)
}

// TestIdleTimerNotSetPerCall: leaving the role free between calls sets
// the idle timer only when it is not already set, since setting a timer
// wakes the runtime's sleeping netpoller thread (a fifth of a plain
// call's time on a small machine).
func TestIdleTimerNotSetPerCall(t *testing.T) {
	client, _ := quietPair(t, map[string]any{"s": streams{}}, noWrap) // idleAfter: a minute
	s, err := Dispense[streamer](client, "s")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := s.Chunk(10, i); err != nil {
			t.Fatal(err)
		}
	}
	client.rd.Lock()
	sets := client.rd.sets
	client.rd.Unlock()
	if sets != 1 {
		t.Fatalf("100 calls set the idle timer %d times; want once (it stays set for a minute)", sets)
	}
}

// TestIdleTakeBackAfterCallsStop: while calls keep taking the role and
// leaving it free, the idle timer fires with the role held or freed only
// just now, and is set again; once the calls stop, a reader goroutine
// takes the role back, and the connection still reads: the peer's going
// away is noticed.
func TestIdleTakeBackAfterCallsStop(t *testing.T) {
	client, server := quietPair(t, map[string]any{"s": streams{}}, noWrap)
	client.rd.Lock()
	client.rd.idleAfter = 5 * time.Millisecond
	client.rd.Unlock()
	s, err := Dispense[streamer](client, "s")
	if err != nil {
		t.Fatal(err)
	}
	for i, start := 0, time.Now(); time.Since(start) < 50*time.Millisecond; i++ { // ten periods of calls
		if _, err := s.Chunk(10, i); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "a reader goroutine to take the role back", roleIs(client, roleLoop))
	closeAndAwaitNotice(t, client, server)
}

// closeAndAwaitNotice closes server and fails the test unless client
// notices within 5 s: something reads the client's stream.
func closeAndAwaitNotice(t *testing.T, client, server *Conn) {
	t.Helper()
	server.Close()
	testutil.Receive(t, client.Done(), 5*time.Second, "the client did not notice the server had gone within 5 s")
}

// TestShutdownWhileCallerReads: Shutdown fails a call whose caller is
// reading for its return at once, and leaves the stream open.
func TestShutdownWhileCallerReads(t *testing.T) {
	release := make(chan struct{})
	client, _ := quietPair(t, map[string]any{"g": getterImpl{release}}, noWrap)
	g, err := Dispense[getter](client, "g")
	if err != nil {
		t.Fatal(err)
	}
	defer close(release)
	if _, err := g.Get(context.Background(), 10, 0); err != nil { // the role is free after this
		t.Fatal(err)
	}
	testutil.Eventually(t, "the reader role to be free", roleIs(client, roleFree))
	errc := make(chan error, 1)
	go func() { errc <- g.Block(context.Background()) }()
	testutil.Eventually(t, "the caller to read for its return", roleIs(client, roleCaller))
	client.Shutdown()
	err = testutil.Receive(t, errc, 5*time.Second, "the reading caller did not return within 5 s of Shutdown")
	if !errors.Is(err, ErrDisconnected) {
		t.Errorf("the call = %v; want ErrDisconnected", err)
	}
}

// getter returns data, and blocks, with a context.
type getter interface {
	Get(ctx context.Context, n, seed int) ([]byte, error)
	Block(ctx context.Context) error
}

type getterProxy struct{ *Ref }

func (p getterProxy) Get(ctx context.Context, n, seed int) ([]byte, error) {
	var b []byte
	err := p.Invoke("Get", []any{ctx, n, seed}, &b)
	return b, err
}

func (p getterProxy) Block(ctx context.Context) error { return p.Invoke("Block", []any{ctx}) }

func init() { RegisterInterface[getter](func(r *Ref) getter { return getterProxy{r} }) }

type getterImpl struct{ release chan struct{} }

func (getterImpl) Get(_ context.Context, n, seed int) ([]byte, error) {
	return streams{}.Chunk(n, seed)
}

func (g getterImpl) Block(ctx context.Context) error {
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	return nil
}
