package refbroker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime/debug"
	"time"
)

// Incoming calls: reading a call's header, running the method, and
// replying.

// servingTable holds the peer's calls this side is running, by the peer's
// sequence number, with each call's context (nil for a method without
// one), so a cancel message can reach them, and the size of its message,
// so that their number and their bytes can be bounded. Its methods assume
// the connection's mutex (see state).
type servingTable struct {
	bySeq map[uint64]servingCall
	bytes int // the sizes of their messages, summed
}

type servingCall struct {
	ctx  *callCtx
	size int
}

func (t *servingTable) init() { t.bySeq = make(map[uint64]servingCall) }

// add enters the peer's call seq, whose message has size bytes, unless a
// call with that number is still running (a protocol violation: its
// cancel func would be lost), or maxCalls calls are running already, or
// the messages of those running and this one would pass maxBytes (a call
// alone is never refused for its size: MaxMessageSize bounds that).
func (t *servingTable) add(seq uint64, ctx *callCtx, size, maxCalls, maxBytes int) error {
	if _, dup := t.bySeq[seq]; dup {
		return malformed("call number %d reused while that call is still running", seq)
	}
	if len(t.bySeq) >= maxCalls {
		return errTooManyCalls
	}
	if len(t.bySeq) > 0 && t.bytes+size > maxBytes {
		return &tooManyBytes{held: t.bytes, size: size, limit: maxBytes}
	}
	t.bySeq[seq] = servingCall{ctx: ctx, size: size}
	t.bytes += size
	return nil
}

// grow adds to the bytes of call seq those its arguments took beyond its
// message (decoding's spending: slices, maps, pointers), and reports
// whether the calls running, if it is not alone, now pass maxBytes.
func (t *servingTable) grow(seq uint64, extra, maxBytes int) error {
	sc, ok := t.bySeq[seq]
	if !ok {
		return nil
	}
	if len(t.bySeq) > 1 && t.bytes+extra > maxBytes {
		return &tooManyBytes{held: t.bytes - sc.size, size: sc.size + extra, limit: maxBytes}
	}
	sc.size += extra
	t.bySeq[seq] = sc
	t.bytes += extra
	return nil
}

func (t *servingTable) remove(seq uint64) {
	t.bytes -= t.bySeq[seq].size
	delete(t.bySeq, seq)
}

func (t *servingTable) get(seq uint64) *callCtx { return t.bySeq[seq].ctx }

// errReturned is the cause of a served call's context once the call has
// returned.
var errReturned = errors.New("refbroker: the call returned")

// errTooManyCalls marks a call refused because the peer has the most calls
// running here that Options.MaxConcurrentCalls allows.
var errTooManyCalls = errors.New("too many calls running")

// tooManyBytes marks a call refused because the bytes of the peer's calls
// running here, with its own, would pass Options.MaxServedBytes.
type tooManyBytes struct{ held, size, limit int }

func (e *tooManyBytes) Error() string {
	return fmt.Sprintf("the other side's calls running here hold %d bytes (their messages and decoded arguments), and this one's %d would pass the limit of %d (Options.MaxServedBytes)", e.held, e.size, e.limit)
}

// refusal is the error a request refused at admission (add) gets: what
// names it.
func (c *Conn) refusal(what string, err error) error {
	if err == errTooManyCalls {
		return fmt.Errorf("refbroker: %s refused: the other side already runs %d calls and requests of this side's, its limit (Options.MaxConcurrentCalls); retry later, or raise the limit", what, c.maxCalls)
	}
	return fmt.Errorf("refbroker: %s refused: %w; retry later, or raise the limit", what, err)
}

// refused reports whether err (from add) refuses a request, rather than
// breaking the protocol. A nil err, every call's, costs no allocation
// (errors.As's target would escape).
func refused(err error) bool {
	if err == nil {
		return false
	}
	var tb *tooManyBytes
	return err == errTooManyCalls || errors.As(err, &tb)
}

// takeAll empties the table and returns the contexts it held.
func (t *servingTable) takeAll() []*callCtx {
	all := make([]*callCtx, 0, len(t.bySeq))
	for _, sc := range t.bySeq {
		if sc.ctx != nil {
			all = append(all, sc.ctx)
		}
	}
	clear(t.bySeq)
	t.bytes = 0
	return all
}

// incoming is a call from the peer, with its header read.
type incoming struct {
	seq    uint64
	target uint64
	method string
	ctx    *callCtx // nil if the method takes no context
	// bufLen: the first argument is sent as its length (ctxBufferLength)
	bufLen bool
	m      *inbound // the message, positioned at the arguments
	refuse error    // set if the call is refused unread (too many running)
	// thenRead, if not 0, is the inline episode the goroutine handed this
	// call serves it as, reading afterwards if it is still the reader
	// (passRoleWith).
	thenRead uint64
}

// readCall reads a call's header on the reader goroutine, so that its
// context is registered before a cancel for it can arrive, and returns the
// call for the reader to serve, or to refuse if in.refuse is set. An error
// means the peer broke the protocol.
func (c *Conn) readCall(m *inbound) (*incoming, error) {
	d := &m.d
	in := &incoming{seq: d.uvarint(), m: m}
	in.target = d.uvarint()
	in.method = d.name("a call names a method")
	flag := d.byte1()
	in.bufLen = flag&ctxBufferLength != 0
	flag &^= ctxBufferLength
	var remaining int64
	if flag == ctxDeadline {
		remaining = d.varint()
	}
	if d.err != nil {
		return nil, d.err
	}
	switch flag {
	case ctxNone:
	case ctxPlain:
		in.ctx = newCallCtx(-1)
	case ctxDeadline:
		if remaining < 0 {
			return nil, malformed("negative time remaining %d", remaining)
		}
		in.ctx = newCallCtx(time.Duration(remaining))
	default:
		return nil, malformed("bad context flag %d", flag)
	}
	var err error
	c.locked(func(s *state) { err = s.serving.add(in.seq, in.ctx, len(m.frame), c.maxCalls, c.maxServed) })
	if err != nil && in.ctx != nil {
		in.ctx.end(context.Canceled, nil)
	}
	switch {
	case refused(err):
		in.refuse = c.refusal("call of "+in.method, err)
	case err != nil:
		return nil, err
	}
	return in, nil
}

// refuse answers a request of the peer's refused for
// Options.MaxConcurrentCalls or Options.MaxServedBytes.
func (c *Conn) refuse(seq uint64, err error) {
	c.callsRefused.Add(1)
	c.sendRefusal(seq, err)
}

// sendRefusal answers a request of the peer's with err, without waiting:
// the reader calls it, and must go on reading.
func (c *Conn) sendRefusal(seq uint64, err error) { c.answerAtOnce(seq, statusRejected, err) }

// answerAtOnce sends, from the reader, a return for the peer's request
// seq with status and, if not nil, err: without waiting for room, since a
// peer that floods us with requests while not reading the answers is not
// owed memory for them (it gets none once the write queue is full).
func (c *Conn) answerAtOnce(seq uint64, status byte, err error) {
	e := c.newEncoder()
	e.byte1(msgReturn)
	e.uvarint(seq)
	e.byte1(status)
	if err != nil {
		encodeError(e, err, 0)
	}
	_, _ = c.sendCtx(e, nil, endIfFull)
}

// serveRequest runs serve, which answers a request of the peer's that is
// not a call (a Dispense, Describe or CallJSON), on a goroutine of its
// own, counted with the calls running here, so that
// Options.MaxConcurrentCalls bounds these too: a peer sending them faster
// than it reads the answers would otherwise have a goroutine wait here
// for each. Beyond the limit (or MaxServedBytes, for the request's size
// bytes) the request is refused instead. cc, if not nil, is the request's
// context, which the peer's cancel for seq ends; it ends when serve
// returns. An error means the peer broke the protocol.
func (c *Conn) serveRequest(seq uint64, what string, size int, cc *callCtx, serve func()) error {
	var err error
	c.locked(func(s *state) { err = s.serving.add(seq, cc, size, c.maxCalls, c.maxServed) })
	if err != nil && cc != nil {
		cc.end(context.Canceled, nil)
	}
	switch {
	case refused(err):
		c.refuse(seq, c.refusal(what, err))
		return nil
	case err != nil:
		return err
	}
	go func() {
		defer func() {
			c.locked(func(s *state) { s.serving.remove(seq) })
			if cc != nil {
				cc.end(context.Canceled, errReturned)
			}
		}()
		serve()
	}()
	return nil
}

// serveCall runs an incoming call and replies.
func (c *Conn) serveCall(in *incoming) {
	defer c.finish(in.m) // at the latest; normally right after the arguments
	if in.refuse != nil {
		c.refuse(in.seq, in.refuse)
		return
	}
	defer func() {
		c.locked(func(s *state) { s.serving.remove(in.seq) })
		if in.ctx != nil {
			in.ctx.end(context.Canceled, errReturned)
		}
	}()
	if !c.serveGate.wait(context.Background(), c.done) { // Options.ServeAfter
		return // the connection ended first
	}
	x := c.export(in.target)
	if x == nil {
		c.reply(in.seq, statusRejected, fmt.Errorf("refbroker: call of %s on unknown reference #%d (released, or never sent)", in.method, in.target))
		return
	}
	m := x.methods.methods[in.method]
	var fn reflect.Value
	if m == nil && in.method == copyHomeName {
		if fn = c.copyHomeFunc(x); fn.IsValid() {
			m = copyHomeMethod
		}
	}
	if m == nil {
		c.reply(in.seq, statusRejected, fmt.Errorf("refbroker: %s has no method %q (the reference crossed as %s)", x.methods.t, in.method, x.methods.t))
		return
	}
	defer func() {
		if p := recover(); p != nil { // a proxy constructor or (un)marshaler panicked
			c.log.Error("panic while decoding or encoding a call", "method", m.full, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			c.replyFailed(in.seq, fmt.Errorf("refbroker: %s: panic while decoding or encoding: %v", m.full, p))
		}
	}()
	c.callsServed.Add(1)
	fp := m.plan
	args := make([]reflect.Value, 0, fp.t.NumIn())
	if fp.ctx {
		var ctx context.Context = context.Background()
		if in.ctx != nil {
			ctx = in.ctx
		}
		args = append(args, reflect.ValueOf(&ctx).Elem())
	}
	d := &in.m.d
	if in.ctx != nil {
		d.ctx = in.ctx // an *http.Request argument takes it as its context
	}
	if in.bufLen && !m.sendsLength {
		d.fail(malformed("a buffer sent as its length to %s, which is not io.Reader's Read or io.ReaderAt's ReadAt", m.full))
	}
	var scratch uint64 // a buffer sent as its length: made here
	for i, ic := range fp.in {
		if d.err != nil {
			break
		}
		v := reflect.New(ic.t).Elem()
		if i == 0 && in.bufLen {
			b := c.scratchBuffer(d)
			scratch = uint64(len(b))
			v.SetBytes(b)
		} else {
			ic.dec(d, v)
		}
		args = append(args, v) // dropped below if decoding failed
	}
	if d.err == nil && d.remaining() != 0 {
		d.fail(malformed("%d bytes left after the arguments (does the caller have the same signature, %s?)", d.remaining(), fp.t))
	}
	if d.err != nil {
		c.replyFailed(in.seq, fmt.Errorf("refbroker: %s: decoding arguments: %w", m.full, d.err))
		return
	}
	if spent := d.spent + scratch; spent > 0 { // what the arguments took beyond the message counts too
		var err error
		c.locked(func(s *state) { err = s.serving.grow(in.seq, int(min(spent, math.MaxInt32)), c.maxServed) })
		if err != nil {
			c.callsRefused.Add(1)
			c.replyFailed(in.seq, c.refusal("call of "+m.full, err))
			return
		}
	}
	c.finish(in.m)
	// A peer that does not read our answers gets no more of its calls run
	// until it does: their results would only wait in memory.
	var wctx context.Context
	if in.ctx != nil {
		wctx = in.ctx
	}
	if c.waitRoom(wctx) != nil {
		c.replyFailed(in.seq, fmt.Errorf("refbroker: %s: the caller gave up while the call waited for it to read earlier answers", m.full))
		return
	}
	if end := x.serialize(in.method); end != nil {
		defer end() // once the return is sent, below
	}
	if !fn.IsValid() {
		fn = x.recv
		if m.index >= 0 {
			fn = x.recv.Method(m.index)
		}
	}
	outs, err := c.safeCall(m.full, fn, args, fp.variadic)
	if err != nil {
		c.replyFailed(in.seq, err)
		return
	}
	e := c.newEncoder()
	if c.admit(e, nil) != nil {
		freeEncoder(e)
		return
	}
	e.byte1(msgReturn)
	e.uvarint(in.seq)
	e.byte1(statusOK)
	for i, oc := range fp.out {
		if err := oc.encode(e, outs[i]); err != nil {
			c.discard(e)
			c.replyFailed(in.seq, fmt.Errorf("refbroker: %s: result %d: %w", m.full, i+1, err))
			return
		}
	}
	inArgs := args
	if fp.ctx {
		inArgs = args[1:]
	}
	if fp.outParams != nil {
		if err := writeOutParams(e, fp, inArgs, c.peerReads(featRestoreRefs)); err != nil {
			c.discard(e)
			c.replyFailed(in.seq, fmt.Errorf("refbroker: %s: %w", m.full, err))
			return
		}
	}
	if m.fills {
		writeFilled(e, inArgs[0], outs[0])
	}
	c.cancelsFirst()
	if err := c.send(e); err != nil && !errors.Is(err, ErrDisconnected) {
		c.replyFailed(in.seq, fmt.Errorf("refbroker: %s: %w", m.full, err))
	}
	if x.after != nil { // the return is written or copied: nothing here holds them now
		x.after.afterReply(args, outs)
	}
	if m.fills {
		// A read must not keep its buffer (io.Reader's rule), and the
		// return is written or copied: a large buffer, which shares the
		// frame it arrived in, serves the next large message, so that a
		// megabyte read into the caller's buffer takes no fresh memory on
		// either side (BENCHMARKS.md, Against the machine).
		recycle(inArgs[0].Bytes())
	}
}

// scratchBuffer makes the buffer of a Read or ReadAt whose caller sent
// its length alone (ctxBufferLength): zeroed (a pooled frame held another
// message), of at most the message limit (its filled part goes back in
// the return). serveCall counts it, as what the arguments took beyond
// their message, against Options.MaxServedBytes.
func (c *Conn) scratchBuffer(d *decoder) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(c.maxMsg) {
		d.fail(malformed("a buffer of %d bytes asked for; the message limit is %d (Options.MaxMessageSize)", n, c.maxMsg))
		return nil
	}
	if n < bigBytes {
		return make([]byte, n)
	}
	b := getFrame(int(n))
	clear(b)
	return b
}

// safeCall is the one place user code is called on the peer's behalf. A
// panic becomes an error carrying the panic value; the stack is logged.
// name names the method in both.
func (c *Conn) safeCall(name string, fn reflect.Value, args []reflect.Value, variadic bool) (outs []reflect.Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic in a method called by the other side", "method", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("refbroker: %s panicked: %v", name, p)
		}
	}()
	if variadic {
		return fn.CallSlice(args), nil
	}
	return fn.Call(args), nil
}

func (c *Conn) replyFailed(seq uint64, err error) { c.reply(seq, statusFailed, err) }

// reply sends a return carrying only an error. If the error's own methods
// panic (it can be a user's, from CallJSON), its text says so instead.
func (c *Conn) reply(seq uint64, status byte, err error) {
	e := c.newEncoder()
	e.byte1(msgReturn)
	e.uvarint(seq)
	e.byte1(status)
	m := e.mark()
	if perr := errCodec.encode(e, reflectError(err)); perr != nil {
		e.reset(m)
		encodeError(e, fmt.Errorf("refbroker: the error could not be sent: %v", perr), 0)
	}
	_ = c.send(e)
}

// replyValue sends a successful return carrying one value.
func (c *Conn) replyValue(seq uint64, v reflect.Value) {
	vc, err := codecFor(v.Type())
	if err != nil {
		c.replyFailed(seq, fmt.Errorf("refbroker: %w", err))
		return
	}
	e := c.newEncoder()
	e.byte1(msgReturn)
	e.uvarint(seq)
	e.byte1(statusOK)
	if err := vc.enc(e, v); err != nil {
		c.discard(e)
		c.replyFailed(seq, fmt.Errorf("refbroker: %w", err))
		return
	}
	_ = c.send(e)
}
