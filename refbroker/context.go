package refbroker

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Contexts across the wire. A call whose method takes a context.Context
// carries a flag (no context, one without deadline, or one with a
// deadline) and, for a deadline, the time remaining, not a wall-clock
// instant, so a peer whose clock is off still gets the right one. When the
// caller's context ends, a cancel message tells the callee why: cancelled
// or deadline exceeded, and the caller's context.Cause if it has its own.
// The callee's context (callCtx) then ends with that same reason.

// Reasons in a cancel message.
const (
	reasonCanceled byte = 1
	reasonDeadline byte = 2
)

// writeContext writes the context flag of a call of a method that takes a
// context (hasCtx), from the caller's ctx (nil: none given).
func writeContext(e *encoder, ctx context.Context, hasCtx bool, flags byte) {
	switch {
	case !hasCtx:
		e.byte1(ctxNone | flags)
	case ctx == nil:
		e.byte1(ctxPlain | flags)
	default:
		if dl, ok := ctx.Deadline(); ok {
			e.byte1(ctxDeadline | flags)
			e.varint(int64(max(time.Until(dl), 0)))
		} else {
			e.byte1(ctxPlain | flags)
		}
	}
}

// gaveUp names what was given up in an error that is ctx's own (the
// caller's deadline or cancellation), and returns any other as it is.
func gaveUp(ctx context.Context, what string, err error) error {
	if err == nil || err != ctx.Err() {
		return err
	}
	if d, ok := context.Cause(ctx).(callTimeout); ok {
		return fmt.Errorf("refbroker: %s: %v (Options.CallTimeout): %w", what, d, err)
	}
	return fmt.Errorf("refbroker: %s: %w", what, err)
}

// cancelLater queues a cancel telling the peer that the context of our call
// seq ended, for the flusher (release.go) to send. The caller does not wait
// for room in the write queue: a caller whose context ends returns at once,
// and callers giving up on a peer that does not read leave an entry each
// in the call table, not a goroutine each.
func (c *Conn) cancelLater(seq uint64, ctx context.Context) {
	k := newCancelOut(seq, ctx) // a context's methods are user code: not under the mutex
	queued := false
	c.locked(func(s *state) { queued = s.calls.queueCancel(k) })
	if queued {
		c.wakeFlusher()
	}
}

// newCancelOut is the cancel of call seq, whose context ctx has ended.
func newCancelOut(seq uint64, ctx context.Context) cancelOut {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == err {
		cause = nil
	}
	return cancelOut{seq: seq, err: err, cause: cause}
}

// cancelsFirst sends, on this goroutine, the cancels of our calls whose
// context has ended, before a reply it is about to send: a callback that
// cancels the context of the call it serves (say, a progress func that
// stops the work) returns only after the peer's call has heard, so the
// peer's next look at its context sees it, as it would in one process.
// context.AfterFunc would tell the peer too, but on a goroutine of its own,
// which the reply could overtake.
func (c *Conn) cancelsFirst() {
	var waiting map[uint64]context.Context
	queued := false
	c.locked(func(s *state) {
		queued = len(s.calls.cancels) > 0
		if s.calls.withCtx > 0 {
			waiting = s.calls.withContext()
		}
	})
	var ended []cancelOut
	for seq, ctx := range waiting { // a context's methods are user code: not under the mutex
		if ctx.Err() != nil {
			ended = append(ended, newCancelOut(seq, ctx))
		}
	}
	if !queued && len(ended) == 0 {
		return
	}
	c.locked(func(s *state) {
		for _, k := range ended {
			s.calls.queueCancel(k)
		}
	})
	// Some may have been taken by the flusher and not sent yet:
	// sendCancels waits for its turn, which ends once they are in the
	// write queue.
	c.sendCancels()
}

// cancelOut is a cancel waiting to be sent: the call, and how its
// caller's context ended (err) and why (cause, if other than err).
type cancelOut struct {
	seq        uint64
	err, cause error
}

// sendCancels sends the queued cancels, one message each, in the order
// the calls were given up. A cancel whose call's return has come since is
// dropped: the peer is done with that call.
func (c *Conn) sendCancels() {
	c.cancelling.Lock()
	defer c.cancelling.Unlock()
	for {
		var batch []cancelOut
		c.locked(func(s *state) { batch = s.calls.takeCancels() })
		if len(batch) == 0 {
			return
		}
		for _, k := range batch {
			if c.send(cancelMessage(c.newEncoder(), k)) != nil {
				return // the connection ended
			}
			c.locked(func(s *state) { s.calls.cancelWasSent(k.seq) })
		}
	}
}

// cancelMessage encodes k into e.
func cancelMessage(e *encoder, k cancelOut) *encoder {
	e.byte1(msgCancel)
	e.uvarint(k.seq)
	if k.err == context.DeadlineExceeded {
		e.byte1(reasonDeadline)
	} else {
		e.byte1(reasonCanceled)
	}
	m := e.mark()
	if errCodec.encode(e, reflectError(k.cause)) != nil {
		e.reset(m)
		e.byte1(errTagNil) // a cause that cannot be sent is left out
	}
	return e
}

// readCancel reads a cancel message after its seq and ends the context of
// the peer's call seq, if it is still running.
func (c *Conn) readCancel(d *decoder, seq uint64) error {
	reason := d.byte1()
	cause := decodeError(d, 0)
	if d.err != nil {
		return d.err
	}
	err := context.Canceled
	switch reason {
	case reasonCanceled:
	case reasonDeadline:
		err = context.DeadlineExceeded
	default:
		return malformed("bad cancel reason %d", reason)
	}
	var cc *callCtx
	c.locked(func(s *state) { cc = s.serving.get(seq) })
	if cc != nil {
		cc.end(err, cause)
	}
	return nil
}

// callCtx is the context of a call served for the peer. It ends when the
// caller's context ends, with the caller's reason (Err) and cause
// (context.Cause); at its own deadline; or when the call returns.
//
// It keeps its own Done channel and error rather than being a context
// made by WithDeadline, so that Err says DeadlineExceeded when the
// caller's deadline passed even if the caller's cancel message arrives
// before this side's timer fires. The embedded context, made with
// WithCancelCause and cancelled just before Done closes, carries Value
// and the cause: context.Cause finds it.
type callCtx struct {
	context.Context
	cancel   context.CancelCauseFunc
	deadline time.Time // zero: none
	timer    *time.Timer
	done     chan struct{}
	mu       sync.Mutex // guards err until done is closed, and timer
	err      error
}

// newCallCtx makes the context of a served call; remaining is the time
// left before its deadline, or negative for none.
func newCallCtx(remaining time.Duration) *callCtx {
	inner, cancel := context.WithCancelCause(context.Background())
	cc := &callCtx{Context: inner, cancel: cancel, done: make(chan struct{})}
	if remaining >= 0 {
		cc.deadline = time.Now().Add(remaining)
		cc.mu.Lock() // the timer may fire before it is stored
		cc.timer = time.AfterFunc(remaining, func() { cc.end(context.DeadlineExceeded, nil) })
		cc.mu.Unlock()
	}
	return cc
}

func (cc *callCtx) Deadline() (time.Time, bool) { return cc.deadline, !cc.deadline.IsZero() }
func (cc *callCtx) Done() <-chan struct{}       { return cc.done }

func (cc *callCtx) Err() error {
	select {
	case <-cc.done:
		return cc.err // written before done was closed
	default:
		return nil
	}
}

// AfterFunc lets contexts derived from this one follow it without a
// goroutine each (the context package looks for this method).
func (cc *callCtx) AfterFunc(f func()) func() bool { return context.AfterFunc(cc.Context, f) }

// end ends the context with err, and cause for context.Cause (err if nil).
// The first end wins.
func (cc *callCtx) end(err, cause error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	timer := cc.timer
	cc.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if cause == nil {
		cause = err
	}
	cc.cancel(cause)
	close(cc.done)
}
