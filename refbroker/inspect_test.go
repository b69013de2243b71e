package refbroker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// blocker's Block waits until release is closed.
type blocker interface {
	Block() error
}

type blockerProxy struct{ *Ref }

func (p blockerProxy) Block() error { return p.Invoke("Block", nil) }

func init() { RegisterInterface[blocker](func(r *Ref) blocker { return blockerProxy{r} }) }

type blocking struct{ release chan struct{} }

func (b blocking) Block() error { <-b.release; return nil }

// TestPing: Ping answers while the peer serves, also while the peer runs
// all the calls its MaxConcurrentCalls allows (its reader answers a ping
// without running anything: busy, not gone; a peer of an older refplug
// is sent a Describe, which it refuses then, and that counts as an
// answer: TestWirePing); ErrDisconnected once the peer has gone.
func TestPing(t *testing.T) {
	b := blocking{release: make(chan struct{})}
	client, server := newPair(t, Options{Roots: map[string]any{"b": b}, MaxConcurrentCalls: 1}, Options{})
	// A request leaves the peer's table a moment after its answer
	// arrives: until then the next would be refused for the limit of one.
	settle := func() {
		testutil.Eventually(t, "the peer to finish serving a request", func() bool { return server.Stats().Serving == 0 })
	}
	if err := client.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	settle()
	p, err := Dispense[blocker](client, "b")
	if err != nil {
		t.Fatal(err)
	}
	settle()
	done := make(chan error, 1)
	go func() { done <- p.Block() }()
	testutil.Eventually(t, "the call to occupy the peer's one slot", func() bool { return server.Stats().Serving == 1 })
	refusedBefore := server.Stats().CallsRefused
	if err := client.Ping(); err != nil {
		t.Errorf("Ping of a peer running its limit of calls = %v; want nil, the peer having answered", err)
	}
	if server.Stats().CallsRefused != refusedBefore {
		t.Errorf("the peer refused %d requests; want the ping answered, not refused", server.Stats().CallsRefused-refusedBefore)
	}
	close(b.release)
	if err := testutil.Receive(t, done, 10*time.Second, "Block did not return"); err != nil {
		t.Fatal(err)
	}
	server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testutil.Eventually(t, "Ping to say the peer has gone", func() bool { return errors.Is(client.PingContext(ctx), ErrDisconnected) })
}

// panicky's MarshalJSON panics.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("marshal exploded") }

type showsPanicky struct{}

func (showsPanicky) Show() (panicky, error) { return panicky{}, nil }

// TestCallJSONMarshalPanic: a result whose MarshalJSON panics fails the
// CallJSON naming the result and the panic; the serving side goes on.
func TestCallJSONMarshalPanic(t *testing.T) {
	client, _ := testPair(t, map[string]any{"s": showsPanicky{}})
	_, err := client.CallJSON("s", "Show")
	if err == nil || !strings.Contains(err.Error(), "result 1") || !strings.Contains(err.Error(), "marshal exploded") {
		t.Errorf("CallJSON of a result whose MarshalJSON panics = %v; want an error naming the result and the panic", err)
	}
	if err := client.Ping(); err != nil {
		t.Errorf("Ping after the panic: %v", err)
	}
}

// TestNamesThePeerWouldRefuse: a name with control characters (or over
// 64 KiB) given to Dispense or CallJSON fails there, naming it quoted,
// and is never sent: the peer would end the connection over it
// (TestWirePeerTextIsPrintable); the connection goes on.
func TestNamesThePeerWouldRefuse(t *testing.T) {
	b := blocking{release: make(chan struct{})}
	close(b.release)
	client, _ := newPair(t, Options{Roots: map[string]any{"b": b}}, Options{})
	if _, err := Dispense[blocker](client, "b\x1b[2J"); err == nil || !strings.Contains(err.Error(), `Dispense[refbroker.blocker]("b\x1b[2J"): the name holds control or bidirectional formatting characters`) {
		t.Errorf("Dispense of a name with an escape = %v", err)
	}
	if _, err := Dispense[blocker](client, strings.Repeat("b", 64<<10+1)); err == nil || !strings.Contains(err.Error(), "the name is 65537 bytes; at most 65536") {
		t.Errorf("Dispense of a name of 64 KiB + 1 = %v", err)
	}
	if _, err := client.CallJSON("b", "Block\x00"); err == nil || !strings.Contains(err.Error(), `CallJSON("b", "Block\x00"): the method's name holds control or bidirectional formatting characters`) {
		t.Errorf("CallJSON of a method name with a NUL = %v", err)
	}
	if _, err := client.CallJSON("b\xff", "Block"); err == nil || !strings.Contains(err.Error(), "the object's name holds control or bidirectional formatting characters, or bytes that are not UTF-8") {
		t.Errorf("CallJSON of an object name that is not UTF-8 = %v", err)
	}
	if _, err := client.CallJSON("b", "Block"); err != nil {
		t.Errorf("CallJSON after them = %v; want the connection still up", err)
	}
	p, err := Dispense[blocker](client, "b")
	if err != nil {
		t.Fatalf("Dispense after them: %v", err)
	}
	if err := p.Block(); err != nil {
		t.Errorf("Block = %v", err)
	}
}
