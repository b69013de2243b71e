package refbroker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// The write queue: frames go out whole and in the order they are queued,
// combined into few writes under load, bounded while the peer is slow to
// read, and a caller whose context ends is let go even mid-write.

// errQueueFull is write's answer in endIfFull mode when there is no room.
var errQueueFull = errors.New("write queue full")

// writeQueue combines frames: while one goroutine writes, others append
// their frames to pending, and the writer sends them together in its next
// Write. Under load that turns many small stream writes (each a system
// call; on a yamux stream, also a trip through its send loop) into a few.
// pending is bounded (Options.MaxQueuedBytes): a frame that finds no room
// waits for the writer to take the queue, unless it is the only one.
type writeQueue struct {
	sync.Mutex
	writing bool   // a goroutine is writing to the stream
	pending []byte // frames to write next, in order
	// inParts: a frame in parts waits for the writer role, or holds it
	// (writeParts); waiting: the bytes of the one that waits.
	inParts bool
	waiting int
	spare   []byte        // the last written buffer, reused
	room    chan struct{} // closed when the writer takes pending; nil if nobody waits
	err     error         // the write error that ended the connection
}

// hasRoom reports whether a frame of n bytes may join the queue. q is
// locked.
func (c *Conn) hasRoom(n int) bool {
	q := &c.wq
	held := q.held()
	return held == 0 || held+n <= c.maxQueue
}

// held is what waits to be written: the queue, and a frame in parts that
// waits for the writer (writeParts), which counts against MaxQueuedBytes
// as the queue does. q is locked.
func (q *writeQueue) held() int { return len(q.pending) + q.waiting }

// maxBuilding bounds the messages of calls and returns being built at
// once: each is admitted (admit) before it is encoded and leaves when its
// encoder is freed, so a peer that stops reading holds the write queue's
// bound (MaxQueuedBytes) plus at most this many messages of this side's
// in memory, however many calls wait. Internal messages (type info,
// cancels, releases, refusals) are not counted: they are built while a
// counted one is.
const maxBuilding = 8

// admit waits until e's message may be built, then counts it until e is
// freed. It returns ctx's error if ctx ends first, ErrDisconnected if the
// connection does.
func (c *Conn) admit(e *encoder, ctx context.Context) error {
	if err := acquire(c.building, ctx, c.done); err != nil {
		return err
	}
	e.admitted = c
	return nil
}

// acquire takes a slot of sem, waiting until one is free: it returns
// ctx's error if ctx (nil: none) ends first, ErrDisconnected if done
// closes.
func acquire(sem chan struct{}, ctx context.Context, done <-chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctxDone:
		return ctx.Err()
	case <-done:
		return ErrDisconnected
	}
}

// waitRoom waits while a write is in progress and the write queue is
// full, so that no more work is started whose output would only wait in
// memory. It returns ctx's error if ctx ends first, ErrDisconnected if the
// connection does.
func (c *Conn) waitRoom(ctx context.Context) error {
	q := &c.wq
	for {
		q.Lock()
		if !q.writing || q.held() < c.maxQueue/2 {
			q.Unlock()
			return nil
		}
		room := q.roomChan()
		q.Unlock()
		if err := awaitClosed(room, ctx, c.done); err != nil {
			return err
		}
	}
}

// roomChan returns the channel closed when there is room next. q is locked.
func (q *writeQueue) roomChan() chan struct{} {
	if q.room == nil {
		q.room = make(chan struct{})
	}
	return q.room
}

// awaitClosed waits for ch to be closed: it returns ctx's error if ctx
// (nil: none) ends first, ErrDisconnected if done closes.
func awaitClosed(ch <-chan struct{}, ctx context.Context, done <-chan struct{}) error {
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	select {
	case <-ch:
		return nil
	case <-ctxDone:
		return ctx.Err()
	case <-done:
		return ErrDisconnected
	}
}

// write sends one frame, or queues it behind the frame being written; it
// may return before the frame is on the wire, but frames always go out in
// the order they were queued. A frame that finds the queue full waits
// (full == waitForRoom) or is refused (endIfFull); in endIfFull mode a
// frame is never written on the caller's goroutine. queued reports whether
// the frame was committed to the stream.
func (c *Conn) write(frame []byte, ctx context.Context, full int) (queued bool, err error) {
	q := &c.wq
	q.Lock()
	for {
		if q.err != nil {
			err := q.err
			q.Unlock()
			return false, err
		}
		if !q.writing {
			break
		}
		if c.hasRoom(len(frame)) {
			q.pending = append(q.pending, frame...)
			q.Unlock()
			return true, nil
		}
		if full == endIfFull {
			q.Unlock()
			return false, errQueueFull
		}
		room := q.roomChan()
		q.Unlock()
		if err := awaitClosed(room, ctx, c.done); err != nil {
			return false, err
		}
		q.Lock()
	}
	q.writing = true
	q.Unlock()
	if full == endIfFull {
		// Refusals are sent by the reader: were it to block writing to a
		// peer that does not read, it would stop reading, and the queue
		// would never fill for the flood to be noticed.
		go c.flushAside(bytes.Clone(frame))
		return true, nil
	}
	return true, c.flush(frame, frame, ctx)
}

// flush writes buf, then whatever was queued meanwhile, while holding the
// writer role. mine is the caller's own frame (never kept as spare). So
// one caller is not kept writing for others forever, after a few rounds it
// hands the role to a new goroutine; it does the same, with the rest of
// what it was writing, if its ctx ends mid-write (see writeAll).
func (c *Conn) flush(buf, mine []byte, ctx context.Context) error {
	q := &c.wq
	intr := c.armInterrupt(ctx)
	defer intr.disarm()
	for round := 0; ; round++ {
		if round == 16 {
			go c.flushAside(buf)
			return nil
		}
		n, err := c.writeAll(buf, ctx)
		if err != nil && ctx != nil && err == ctx.Err() {
			// Our caller gave up mid-write; the rest of the frame must still
			// go, or the stream is broken.
			go c.flushAside(bytes.Clone(buf[n:]))
			return err
		}
		q.Lock()
		if (mine == nil || &buf[0] != &mine[0]) && cap(buf) <= 1<<20 {
			q.spare = buf[:0]
		}
		q.Unlock()
		if buf = c.takeQueued(err); buf == nil {
			return err
		}
	}
}

// takeQueued is the writer's next step after a write that ended with err:
// it returns what was queued meanwhile, to write next, or nil when the
// writer's job ends (an error, recorded for later writers, or an empty
// queue).
func (c *Conn) takeQueued(err error) []byte {
	q := &c.wq
	q.Lock()
	defer q.Unlock()
	defer q.wake()
	if err != nil || len(q.pending) == 0 {
		q.writing = false
		if err != nil {
			q.err = err
		}
		return nil
	}
	buf := q.pending
	q.pending, q.spare = q.spare, nil
	return buf
}

// writeParts is write for a frame in parts (a message carrying large byte
// slices uncopied, encoder.rawBytes): written with one writev by this
// goroutine as the writer. If another goroutine is writing, the frame
// waits for it to finish, unless another frame in parts waits or is being
// written: then it is copied whole into the queue (write returns before a
// queued frame is on the wire, and the slices are the caller's). The copy
// is a fresh buffer of the frame's size, and its collection: where a large
// frame meets a small one being written (a release, another call), the
// wait costs far less. One frame at most waits, so the queue still fills,
// and holds calls back (waitRoom), when the peer stops reading; the wait
// ends when ctx or the connection does.
func (c *Conn) writeParts(parts net.Buffers, ctx context.Context, full int) (queued bool, err error) {
	q := &c.wq
	q.Lock()
	if q.writing && q.err == nil && !q.inParts && full == waitForRoom {
		if err := c.awaitWriter(parts, ctx); err != nil {
			return false, err // q unlocked
		}
	}
	if err := q.err; err != nil {
		q.Unlock()
		return false, err
	}
	if q.writing {
		q.Unlock()
		return c.write(flatten(parts), ctx, full)
	}
	q.writing, q.inParts = true, true
	q.Unlock()
	intr := c.armInterrupt(ctx)
	err = c.writeVec(&parts, ctx)
	intr.disarm()
	q.Lock()
	q.inParts = false
	q.Unlock()
	if err != nil && ctx != nil && err == ctx.Err() {
		go c.flushAside(flatten(parts)) // the rest must still go
		return true, err
	}
	if buf := c.takeQueued(err); buf != nil {
		return true, c.flush(buf, nil, ctx)
	}
	return true, err
}

// awaitWriter waits, as the frame in parts that waits, until nobody
// writes or the connection has failed. q is locked, and still is when it
// returns nil; if ctx ends or the connection does first, it returns why
// with q unlocked.
func (c *Conn) awaitWriter(parts net.Buffers, ctx context.Context) error {
	q := &c.wq
	q.inParts, q.waiting = true, partsLen(parts)
	var err error
	for q.writing && q.err == nil && err == nil {
		room := q.roomChan()
		q.Unlock()
		err = awaitClosed(room, ctx, c.done)
		q.Lock()
	}
	q.inParts, q.waiting = false, 0
	if err != nil {
		q.Unlock()
	}
	return err
}

// partsLen is the length of a frame in parts.
func partsLen(parts net.Buffers) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// flatten copies parts into one buffer.
func flatten(parts net.Buffers) []byte {
	buf := make([]byte, 0, partsLen(parts))
	for _, p := range parts {
		buf = append(buf, p...)
	}
	return buf
}

// writeVec is writeAll for a frame in parts, which it consumes as they
// are written.
func (c *Conn) writeVec(parts *net.Buffers, ctx context.Context) error {
	for {
		_, err := parts.WriteTo(c.rwc)
		if err == nil || !isTimeout(err) {
			return err
		}
		c.setWriteDeadline(time.Time{})
		if ctx != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if len(*parts) == 0 {
			return nil
		}
	}
}

// flushAside goes on writing, on a goroutine of its own, for a writer
// that stopped.
func (c *Conn) flushAside(buf []byte) {
	if err := c.flush(buf, nil, nil); err != nil {
		c.wentAway(err)
	}
}

// wake tells those waiting for room that the queue was taken. q is locked.
func (q *writeQueue) wake() {
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

// writeAll writes buf whole, unless ctx ends first: then it returns how
// much it wrote and ctx's error. A write deadline in the past is how a
// blocked Write is interrupted (armInterrupt); a timeout that is not
// ours (an interrupt that fired late, for an earlier writer) is cleared
// and the write goes on.
func (c *Conn) writeAll(buf []byte, ctx context.Context) (int, error) {
	written := 0
	for {
		n, err := c.rwc.Write(buf[written:])
		written += n
		if err == nil || !isTimeout(err) {
			return written, err
		}
		if ctx != nil && ctx.Err() != nil {
			c.setWriteDeadline(time.Time{})
			return written, ctx.Err()
		}
		c.setWriteDeadline(time.Time{})
		if written == len(buf) {
			return written, nil
		}
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// writeDeadliner is what a stream needs for a write to be interrupted when
// its caller's context ends: sockets, net.Pipe and yamux streams have it.
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

func (c *Conn) setWriteDeadline(t time.Time) {
	if wd, ok := c.rwc.(writeDeadliner); ok {
		_ = wd.SetWriteDeadline(t)
	}
}

// interrupt interrupts a blocked read or write when its caller's context
// ends, by setting a deadline in the past (the writes of one flush, or a
// caller reading for its return).
type interrupt struct {
	mu    sync.Mutex
	armed bool
	fired bool // the deadline was set
	stop  func() bool
}

// armInterrupt arms an interrupt of this flush's writes for ctx, or
// returns nil if ctx never ends or the stream cannot be interrupted.
func (c *Conn) armInterrupt(ctx context.Context) *interrupt {
	if _, ok := c.rwc.(writeDeadliner); !ok || !canEnd(ctx) {
		return nil
	}
	return newInterrupt(ctx, c.setWriteDeadline)
}

// canEnd reports whether ctx can end. Callers check it before they make
// the setter newInterrupt takes: a method value escapes, so making one
// costs an allocation, which most calls (no context) need not pay.
func canEnd(ctx context.Context) bool { return ctx != nil && ctx.Done() != nil }

// newInterrupt arms an interrupt that calls set with a time in the past
// when ctx ends, or returns nil if ctx never ends.
func newInterrupt(ctx context.Context, set func(time.Time)) *interrupt {
	if !canEnd(ctx) {
		return nil
	}
	in := &interrupt{armed: true}
	in.stop = context.AfterFunc(ctx, func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.armed {
			in.fired = true
			set(time.Unix(1, 0))
		}
	})
	return in
}

// disarm ends the interrupt: once it returns, the deadline is not set by
// it any more. It reports whether the deadline was set.
func (in *interrupt) disarm() (fired bool) {
	if in == nil {
		return false
	}
	in.stop()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.armed = false
	return in.fired
}

// ctxMutex is a mutex held across a send, whose lock gives up when the
// waiter's context ends (nil: never) or the connection does: one holder
// waiting for room must not keep others past their deadlines.
type ctxMutex chan struct{}

func (m ctxMutex) lock(ctx context.Context, done <-chan struct{}) error {
	return acquire(m, ctx, done)
}

func (m ctxMutex) unlock() { <-m }
