package refbroker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"time"
)

// Outgoing calls: numbering them, sending them, and taking their returns.

// callTable holds our calls awaiting their return, by sequence number.
// Its methods assume the connection's mutex (see state).
type callTable struct {
	seq     uint64 // the last sequence number given out
	bySeq   map[uint64]*pendingCall
	cancels []cancelOut // cancels of calls in bySeq, waiting for the flusher (context.go)
	withCtx int         // calls in bySeq whose context can end
}

func (t *callTable) init() { t.bySeq = make(map[uint64]*pendingCall) }

// add numbers a new call and enters it.
func (t *callTable) add(p *pendingCall) uint64 {
	t.seq++
	t.bySeq[t.seq] = p
	if p.ctx != nil {
		t.withCtx++
	}
	return t.seq
}

// take removes and returns call seq, or nil if there is none.
func (t *callTable) take(seq uint64) *pendingCall {
	p := t.bySeq[seq]
	if p != nil && p.ctx != nil {
		t.withCtx--
	}
	delete(t.bySeq, seq)
	return p
}

// abandon marks p, still waiting as seq, as abandoned by its caller, and
// reports whether it was still waiting.
func (t *callTable) abandon(seq uint64, p *pendingCall) bool {
	if t.bySeq[seq] != p {
		return false
	}
	p.abandoned = true
	return true
}

// takeAll empties the table and returns what it held.
func (t *callTable) takeAll() []*pendingCall {
	all := make([]*pendingCall, 0, len(t.bySeq))
	for _, p := range t.bySeq {
		all = append(all, p)
	}
	clear(t.bySeq)
	t.cancels = nil
	t.withCtx = 0
	return all
}

// queueCancel queues k for the flusher, if its call still waits for its
// return and its cancel is not queued yet, and reports whether it did.
func (t *callTable) queueCancel(k cancelOut) bool {
	p := t.bySeq[k.seq]
	if p == nil || p.cancelQueued {
		return false
	}
	p.cancelQueued = true
	t.cancels = append(t.cancels, k)
	return true
}

// withContext returns the calls whose context can end and whose cancel,
// if any, is not sent yet: the caller looks at their contexts without the
// mutex.
func (t *callTable) withContext() map[uint64]context.Context {
	var m map[uint64]context.Context
	for seq, p := range t.bySeq {
		if p.ctx != nil && !p.cancelSent {
			if m == nil {
				m = make(map[uint64]context.Context)
			}
			m[seq] = p.ctx
		}
	}
	return m
}

// cancelWasSent marks the cancel of call seq as in the write queue.
func (t *callTable) cancelWasSent(seq uint64) {
	if p := t.bySeq[seq]; p != nil {
		p.cancelSent = true
	}
}

// takeCancels returns the queued cancels whose calls still wait for their
// return, and empties the queue.
func (t *callTable) takeCancels() []cancelOut {
	out := t.cancels[:0:0]
	for _, k := range t.cancels {
		if t.bySeq[k.seq] != nil {
			out = append(out, k)
		}
	}
	t.cancels = nil
	return out
}

// pendingCall is a call of ours awaiting its return.
type pendingCall struct {
	ch      chan reply      // receives what ends the call; capacity 1
	out     []*codec        // the results' codecs, to decode a return nobody waits for
	outPlan *funcPlan       // its plan, if the return restores out-parameters or a filled buffer
	fills   bool            // the return carries a filled buffer (methodPlan.fills)
	sent    []uint64        // export IDs the call sent, to take back if it is rejected
	ctx     context.Context // the caller's, if it can end
	// Guarded by the connection's mutex:
	abandoned    bool // the caller stopped waiting
	cancelQueued bool // the peer is to be told the caller gave up
	cancelSent   bool // and that is in the write queue
}

// reply is what ends a pending call: a return message to decode, or a
// failure known without one (a return over the size limit, which was
// skipped unread), or neither when the connection ended.
type reply struct {
	m   *inbound
	err error
}

// connEnded tells p's caller, if it still waits, that the connection ended.
// p has been taken out of the table.
func (p *pendingCall) connEnded() {
	if !p.abandoned {
		p.ch <- reply{}
	}
}

// call calls method m of the peer's export target with args, and decodes
// the results into outs (settable, one per result of m, error included).
// The returned error is the broker's: the method's own error result is in
// outs.
func (c *Conn) call(ctx context.Context, target uint64, m *methodPlan, args, outs []reflect.Value) error {
	fp := m.plan
	if !fp.ctx && fp.request >= 0 { // the call carries the request's context
		if r, _ := args[fp.request].Interface().(*http.Request); r != nil {
			ctx = r.Context()
		}
	}
	if !fp.ctx && ctx == nil && c.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = c.noContext()
		defer cancel()
		return gaveUp(ctx, m.full, c.callPlan(ctx, target, m, args, outs))
	}
	return c.callPlan(ctx, target, m, args, outs)
}

// callPlan is call once its context is known.
func (c *Conn) callPlan(ctx context.Context, target uint64, m *methodPlan, args, outs []reflect.Value) error {
	fp := m.plan
	if err := c.awaitCallAfter(ctx, m.full); err != nil {
		return err
	}
	var restore *outArgs
	if fp.outParams != nil || m.fills {
		restore = &outArgs{plan: fp, fills: m.fills, args: args}
	}
	return c.roundTrip(ctx, m.full, fp.out, outs, restore, func(e *encoder, seq uint64) error {
		e.byte1(msgCall)
		e.uvarint(seq)
		e.uvarint(target)
		e.string(m.name)
		var flags byte
		if m.sendsLength && c.peerReads(featBufferLength) {
			flags = ctxBufferLength
		}
		writeContext(e, ctx, fp.ctx || fp.request >= 0, flags)
		first := 1
		if fp.ctx {
			first = 2
		}
		for i, a := range args {
			if i == 0 && flags&ctxBufferLength != 0 {
				e.uvarint(uint64(a.Len())) // its contents are the callee's scratch
				continue
			}
			if err := fp.in[i].encode(e, a); err != nil {
				return fmt.Errorf("refbroker: %s: parameter %d: %w", m.full, i+first, err)
			}
		}
		return nil
	})
}

// noContext returns the context of a request made without one: it ends
// after Options.CallTimeout, with a callTimeout as its cause, or never if
// there is no call timeout.
func (c *Conn) noContext() (context.Context, context.CancelFunc) {
	if c.callTimeout <= 0 {
		return context.Background(), func() {}
	}
	return context.WithTimeoutCause(context.Background(), c.callTimeout, callTimeout(c.callTimeout))
}

// callTimeout is the cause of a call ended by Options.CallTimeout.
type callTimeout time.Duration

func (d callTimeout) Error() string {
	return fmt.Sprintf("no answer within the call timeout of %v", time.Duration(d))
}

// awaitCallAfter holds a call of this side's until Options.CallAfter is
// closed; it returns ctx's error or ErrDisconnected (naming the call) if
// either ends first.
func (c *Conn) awaitCallAfter(ctx context.Context, name string) error {
	if c.callGate.wait(ctx, c.done) {
		return nil
	}
	if ctx != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return c.disconnected(name)
}

// outArgs are a call's arguments whose out-parameters its return restores
// (outparams.go).
type outArgs struct {
	plan  *funcPlan
	fills bool            // the callee fills the first argument, a byte slice (methodPlan.fills)
	args  []reflect.Value // without the context; nil: restore into nothing
}

// roundTrip sends the message build writes, waits for its return and
// decodes the results into outs with the codecs out, and the
// out-parameters into restore's arguments. name names the call in errors.
func (c *Conn) roundTrip(ctx context.Context, name string, out []*codec, outs []reflect.Value, restore *outArgs, build func(*encoder, uint64) error) error {
	var ctxDone <-chan struct{}
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		ctxDone = ctx.Done()
	}
	p := &pendingCall{ch: make(chan reply, 1), out: out}
	if ctxDone != nil {
		p.ctx = ctx
	}
	if restore != nil {
		p.outPlan, p.fills = restore.plan, restore.fills
	}
	seq, ok := c.addCall(p)
	if !ok {
		return c.disconnected(name)
	}

	e := c.newEncoder()
	err := c.waitRoom(ctx)
	if err == nil {
		err = c.admit(e, ctx)
	}
	if err != nil {
		freeEncoder(e)
		c.forget(seq)
		if err == ErrDisconnected {
			return c.disconnected(name)
		}
		return err
	}
	e.ctx = ctx // the type descriptions it sends first wait no longer than the call
	if err := build(e, seq); err != nil {
		c.discard(e)
		c.forget(seq)
		if errors.Is(err, ErrDisconnected) { // a type-info message could not be sent
			return c.disconnected(name)
		}
		return err
	}
	if len(e.sent) > 0 {
		p.sent = slices.Clone(e.sent)
	}
	if queued, err := c.sendCtx(e, ctx, waitForRoom); err != nil {
		if queued && ctx != nil && err == ctx.Err() {
			// The call is on its way and will run: tell the peer its caller
			// gave up, and decode its return when it comes.
			c.cancelLater(seq, ctx)
			c.abandon(seq, p)
			return err
		}
		c.forget(seq)
		if errors.Is(err, ErrDisconnected) {
			return c.disconnected(name)
		}
		if ctx != nil && err == ctx.Err() {
			return err
		}
		return fmt.Errorf("refbroker: %s: %w", name, err)
	}
	c.callsMade.Add(1)
	// If nobody reads, or the reader serves a call inline (this caller's,
	// say), this caller reads for its return (callerread.go).
	reading := c.takeRole() || c.borrowRole()
	if !reading {
		c.needReader()
		c.wakeReaderToSpin()
	}
	// The peer hears of a cancellation as soon as it happens, even while
	// this goroutine is busy (say, serving a callback of the same call).
	stop := func() bool { return false }
	if ctxDone != nil {
		stop = context.AfterFunc(ctx, func() { c.cancelLater(seq, ctx) })
	}
	var r reply
	got := true
	if reading {
		r, got = c.readFor(p.ch, ctx, placementFor(seq, restore, out))
	} else {
		select {
		case r = <-p.ch:
		case <-ctxDone:
			got = false
		}
	}
	if !got {
		// ctx.Done closes before AfterFunc's func is started, so stopping
		// it here can win the race: then the cancel is ours to send.
		if stop() {
			c.cancelLater(seq, ctx)
		}
		c.abandon(seq, p)
		return ctx.Err()
	}
	stop()
	switch {
	case r.m != nil:
		return c.readReturn(r.m, name, out, outs, restore, p.sent)
	case r.err != nil:
		return r.err
	default:
		return c.disconnected(name)
	}
}

// addCall numbers p and enters it, unless the connection has ended.
func (c *Conn) addCall(p *pendingCall) (seq uint64, ok bool) {
	c.locked(func(s *state) {
		if ok = !s.closed; ok {
			seq = s.calls.add(p)
		}
	})
	return seq, ok
}

// forget removes a call that was never sent.
func (c *Conn) forget(seq uint64) {
	c.locked(func(s *state) { s.calls.take(seq) })
}

// abandon stops waiting for call seq. Its return, whenever it comes, is
// still decoded, so the references in it are counted and then released.
func (c *Conn) abandon(seq uint64, p *pendingCall) {
	waiting := false
	c.locked(func(s *state) { waiting = s.calls.abandon(seq, p) })
	if !waiting {
		// The reader (or the connection's end) took the call out of the
		// table and puts its reply in p.ch right after, without blocking:
		// receiving it here waits only for that.
		go c.drain(p, <-p.ch)
	}
}

// deliver hands the reply to call seq to its caller, and reports whether
// there was such a call.
func (c *Conn) deliver(seq uint64, r reply) bool {
	var p *pendingCall
	abandoned, closed := false, false
	c.locked(func(s *state) {
		p = s.calls.take(seq)
		abandoned = p != nil && p.abandoned
		closed = s.closed
	})
	switch {
	case p == nil && closed:
		// The connection ended while this return was being read: its
		// call was told so (Conn.end), and there is nothing to say.
		return false
	case p == nil:
		// Logged at the 1st, 2nd, 4th, 8th… such return: a peer sending
		// them by the million does not get a log line for each.
		if n := c.unknownReturns.Add(1); n&(n-1) == 0 {
			c.log.Warn("refbroker: return for an unknown call", "seq", seq, "count", n)
		}
		return false
	case abandoned:
		go c.drain(p, r)
	default:
		p.ch <- r
	}
	return true
}

// drain decodes a return nobody waits for and drops the results.
func (c *Conn) drain(p *pendingCall, r reply) {
	if r.m == nil {
		return
	}
	outs := make([]reflect.Value, len(p.out))
	for i, oc := range p.out {
		outs[i] = reflect.New(oc.t).Elem()
	}
	var restore *outArgs
	if p.outPlan != nil {
		restore = &outArgs{plan: p.outPlan, fills: p.fills} // into nothing
	}
	_ = c.readReturn(r.m, "", p.out, outs, restore, p.sent)
}

// readReturn decodes a return into outs. sent are the references the call
// sent, taken back if the peer rejected the call unread.
func (c *Conn) readReturn(m *inbound, name string, out []*codec, outs []reflect.Value, restore *outArgs, sent []uint64) (err error) {
	defer c.finish(m)
	defer func() {
		if p := recover(); p != nil { // a proxy constructor or unmarshaler panicked
			err = fmt.Errorf("refbroker: %s: decoding results panicked: %v", name, p)
		}
	}()
	d := &m.d
	switch status := d.byte1(); status {
	case statusOK:
		for i, oc := range out {
			if d.err != nil {
				break
			}
			oc.dec(d, outs[i])
		}
		// A return that ends with its results restores nothing: a peer
		// built before 2026-11-28 restores no pointer to data holding
		// references, and writes nothing for a method with only those.
		if restore != nil && restore.plan.outParams != nil && d.err == nil && (d.remaining() > 0 || restore.fills) {
			readOutParams(d, restore.plan, restore.args)
		}
		if restore != nil && restore.fills && d.err == nil {
			filled := readFilled(d, restore, m.placed)
			if d.err == nil && len(outs) > 0 {
				checkFilled(d, outs[0], filled)
			}
		}
		if d.err == nil && d.remaining() != 0 {
			d.fail(malformed("%d bytes left after the results", d.remaining()))
		}
		if d.err != nil {
			return fmt.Errorf("refbroker: %s: decoding results: %w", name, d.err)
		}
		return nil
	case statusFailed, statusRejected:
		if status == statusRejected {
			c.unsend(sent)
		}
		err := decodeError(d, 0)
		if d.err != nil {
			return fmt.Errorf("refbroker: %s: decoding the failure: %w", name, d.err)
		}
		if err == nil {
			err = fmt.Errorf("refbroker: %s failed on the other side", name)
		}
		if status == statusRejected {
			return &rejectedCall{err}
		}
		return err
	default:
		if d.err != nil {
			return fmt.Errorf("refbroker: %s: %w", name, d.err)
		}
		return fmt.Errorf("refbroker: %s: %w", name, malformed("bad return status %d", status))
	}
}

// placementFor says where a caller reading its own return has the bytes a
// method filled read: straight into its buffer, for a method that fills
// one (restore.fills) of at least placeMin bytes with results (int,
// error) and no out-parameters, which saves copying them out of the frame
// (frameReader.placeable); nil otherwise.
func placementFor(seq uint64, restore *outArgs, out []*codec) *placement {
	if restore == nil || !restore.fills || restore.plan.outParams != nil || restore.args == nil || len(out) != 2 || out[0].t != intType {
		return nil
	}
	dst := restore.args[0].Bytes()
	if len(dst) < placeMin-placeHead {
		return nil
	}
	return &placement{seq: seq, dst: dst}
}
