package refbroker

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// TestLargeFrameWaitsForTheWriter: a frame in parts (large byte slices
// written from the sender's own memory) that meets another writer waits
// for it rather than being copied into the queue; frames queued before it
// go first; a second one meanwhile is queued, so the queue still fills
// when the peer does not read; a waiter whose context ends returns its
// error, and nothing of its frame is written.
func TestLargeFrameWaitsForTheWriter(t *testing.T) {
	a, b := net.Pipe()
	c := NewConn(a, Options{})
	t.Cleanup(func() {
		c.Close()
		b.Close()
	})
	hello := make([]byte, 4) // its length, then release, no items, features
	if _, err := io.ReadFull(b, hello); err != nil || !bytes.Equal(hello, []byte{3, msgRelease, 0, byte(ourFeatures)}) {
		t.Fatalf("the Conn's first frame: % x, %v; want its hello", hello, err)
	}
	q := &c.wq
	testutil.Eventually(t, "the hello's writer to let go", func() bool {
		q.Lock()
		defer q.Unlock()
		return !q.writing
	})
	inQueue := func() int {
		q.Lock()
		defer q.Unlock()
		return len(q.pending)
	}
	waiting := func(size int) func() bool {
		return func() bool {
			q.Lock()
			defer q.Unlock()
			return q.inParts && q.waiting == size
		}
	}
	q.Lock()
	q.writing = true // another goroutine writes: the test holds the role for it
	q.Unlock()

	small := []byte("a small frame, queued first")
	if queued, err := c.write(small, nil, waitForRoom); err != nil || !queued {
		t.Fatalf("write = %v, %v", queued, err)
	}
	head, big := []byte("head of the large frame"), pattern(1<<20)
	first := make(chan error, 1)
	go func() { _, err := c.writeParts(net.Buffers{head, big}, nil, waitForRoom); first <- err }()
	testutil.Eventually(t, "the large frame to wait for the writer", waiting(len(head)+len(big)))
	if n := inQueue(); n != len(small) {
		t.Fatalf("the queue holds %d bytes; want the small frame's %d (the large one copied into it?)", n, len(small))
	}

	head2, second := []byte("head of the second"), pattern(100<<10)
	if queued, err := c.writeParts(net.Buffers{head2, second}, nil, waitForRoom); err != nil || !queued {
		t.Fatalf("second writeParts = %v, %v", queued, err)
	}
	if n := inQueue(); n != len(small)+len(head2)+len(second) {
		t.Fatalf("the queue holds %d bytes after a second large frame; want it queued behind the small one (%d)", n, len(small)+len(head2)+len(second))
	}

	// The writer goes on: it writes what was queued, then lets go.
	want := bytes.Join([][]byte{small, head2, second, head, big}, nil)
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, len(want))
		n, _ := io.ReadFull(b, buf)
		got <- buf[:n]
	}()
	go func() {
		if buf := c.takeQueued(nil); buf != nil {
			c.flush(buf, nil, nil)
		}
	}()
	if err := testutil.Receive(t, first, 10*time.Second, "the waiting frame to be written"); err != nil {
		t.Fatalf("writeParts = %v", err)
	}
	if w := testutil.Receive(t, got, 10*time.Second, "the frames on the wire"); !bytes.Equal(w, want) {
		t.Fatalf("the wire holds %d bytes, not the queued frames and then the large one (%d bytes)", len(w), len(want))
	}

	// A waiter whose context ends gives up, and the next writer finds no
	// trace of it.
	q.Lock()
	q.writing = true
	q.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	third := make(chan error, 1)
	go func() { _, err := c.writeParts(net.Buffers{head, big}, ctx, waitForRoom); third <- err }()
	testutil.Eventually(t, "the third frame to wait", waiting(len(head)+len(big)))
	cancel()
	if err := testutil.Receive(t, third, 10*time.Second, "the cancelled waiter to return"); err != context.Canceled {
		t.Fatalf("writeParts with its context ended = %v; want context.Canceled", err)
	}
	q.Lock()
	defer q.Unlock()
	if q.inParts || q.waiting != 0 || len(q.pending) != 0 {
		t.Fatalf("after the waiter gave up: inParts %v, waiting %d, queued %d; want none", q.inParts, q.waiting, len(q.pending))
	}
}
