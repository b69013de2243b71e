package refbroker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultMaxMessageSize is the largest message a Conn sends or accepts
// unless Options.MaxMessageSize says otherwise.
const DefaultMaxMessageSize = 64 << 20

// Options configure a Conn. The zero value is ready to use.
type Options struct {
	// Logger receives the connection's diagnostics: panics in called
	// methods (with their stacks) at error level, protocol problems at warn.
	// Default: no logging.
	Logger hclog.Logger
	// Roots are the objects this side serves by name to the peer's
	// Dispense. Default: none.
	Roots map[string]any
	// MaxMessageSize bounds one message, in bytes, in both directions.
	// Default: DefaultMaxMessageSize (64 MiB).
	MaxMessageSize int
}

// Conn is one end of a broker connection over a byte stream. Both ends are
// alike: each serves its exported objects to the other and calls the
// other's. host and plugin make one per plugin, over a socket pair or a
// go-plugin stream; a Conn works over any reliable io.ReadWriteCloser, such
// as net.Pipe.
type Conn struct {
	rwc    io.ReadWriteCloser
	log    hclog.Logger
	roots  map[string]any
	maxMsg int

	// wq combines frames: while one goroutine writes, others append their
	// frames to pending, and the writer sends them together in its next
	// Write. Under load that turns many small stream writes (each a system
	// call; on a yamux stream, also a trip through its send loop) into a few.
	wq struct {
		sync.Mutex
		writing bool   // a goroutine is writing to rwc
		pending []byte // frames to write next, in order
		spare   []byte // the last written buffer, reused
		err     error  // the write error that ended the connection
	}

	// lk guards the connection state and the tables. It is never held
	// across I/O or user code.
	lk struct {
		sync.Mutex
		closed     bool
		err        error                         // why the connection ended
		seq        uint64                        // the last call sequence number used
		pending    map[uint64]*pendingCall       // our calls awaiting a return, by seq
		serving    map[uint64]context.CancelFunc // the peer's calls with a context, by the peer's seq
		nextExport uint64                        // the last export ID given out
		exports    map[uint64]*export            // our objects the peer holds, by export ID
		exportKeys map[exportKey]uint64          // export ID by object identity, for reuse
		imports    map[uint64]*importEntry       // the peer's objects we hold, by their export ID
		gen        uint64                        // the last Ref generation given out
		releases   []release                     // releases waiting for the flusher

		msgNo        uint64              // the last number given to an incoming call or return
		inDecode     map[uint64]struct{} // numbers of messages being decoded
		heldReleases []heldRelease       // the peer's releases waiting for those

		nextTypeID   uint64                  // the last type ID given out (see typecheck.go)
		sentTypes    map[reflect.Type]uint64 // our static types the peer knows, by ID
		peerTypes    map[uint64]*typeSig     // the peer's static types, by its IDs
		checkedTypes map[typePair]error      // (peer type, our type) checks done
	}

	// Cumulative counts, reported by Stats.
	callsMade, callsServed          atomic.Uint64
	exportsCreated, exportsDropped  atomic.Uint64
	importsCreated, importsReleased atomic.Uint64

	announceMu sync.Mutex  // serialises type-info messages (see typecheck.go)
	ended      atomic.Bool // lk.closed, for the reader to read without the lock

	// rd is the reader role (reader.go): one goroutine reads the stream
	// at a time, and may serve a call itself.
	rd struct {
		sync.Mutex
		br       *bufio.Reader
		inline   atomic.Uint64 // the inline episode in progress; 0 while the reader reads
		episodes uint64        // the last episode number given out
		watching bool          // the watchdog goroutine runs
		stopped  bool          // the stream is closed: no new readers or watchdog
	}

	releaseReady chan struct{}  // wakes the release flusher; capacity 1
	done         chan struct{}  // closed when the connection has ended
	workers      sync.WaitGroup // the reader while it reads, the watchdog and the release flusher
}

// export is one of our objects that the peer holds.
type export struct {
	val     reflect.Value // the object: an interface value or a func
	recv    reflect.Value // what calls go to: val, or its wire adapter
	methods *ifacePlan    // what the reference grants
	count   uint64        // sends not yet released by the peer
	key     exportKey     // identity in exportKeys; zero if not deduplicated
}

// exportKey identifies an object exported as a static type, so sending it
// again reuses the export.
type exportKey struct {
	obj any // the comparable dynamic value, or a func's closure address
	t   reflect.Type
}

// pendingCall is a call of ours awaiting its return.
type pendingCall struct {
	ch        chan *decoder // the return, positioned after seq; nil when disconnected
	plan      *funcPlan     // to decode a return nobody waits for
	sent      []uint64      // export IDs the call sent, to take back if it is rejected
	abandoned bool          // guarded by lk: the caller stopped waiting
}

// NewConn starts a broker connection over rwc. It owns rwc from now on and
// closes it when the connection ends.
func NewConn(rwc io.ReadWriteCloser, opts Options) *Conn {
	c := &Conn{
		rwc:          rwc,
		log:          opts.Logger,
		roots:        opts.Roots,
		maxMsg:       opts.MaxMessageSize,
		releaseReady: make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	if c.maxMsg <= 0 {
		c.maxMsg = DefaultMaxMessageSize
	}
	c.lk.pending = make(map[uint64]*pendingCall)
	c.lk.serving = make(map[uint64]context.CancelFunc)
	c.lk.exports = make(map[uint64]*export)
	c.lk.exportKeys = make(map[exportKey]uint64)
	c.lk.imports = make(map[uint64]*importEntry)
	c.lk.inDecode = make(map[uint64]struct{})
	c.lk.sentTypes = make(map[reflect.Type]uint64)
	c.lk.peerTypes = make(map[uint64]*typeSig)
	c.lk.checkedTypes = make(map[typePair]error)
	c.rd.br = bufio.NewReaderSize(rwc, 64<<10)
	c.workers.Add(2)
	go c.readLoop()
	go c.flushReleases()
	return c
}

// errClosed is the cause recorded when this side closes the connection.
var errClosed = errors.New("the connection was closed by this side")

// Close ends the connection: pending and later calls through its proxies
// fail with ErrDisconnected, and the stream is closed. Close is idempotent
// and waits for the connection's own goroutines (not for methods it is
// still running on the peer's behalf: their contexts are cancelled).
func (c *Conn) Close() error {
	c.shutdown(errClosed)
	c.workers.Wait()
	return nil
}

// Done is closed when the connection has ended, by Close or because the
// peer went away.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended, wrapping ErrDisconnected; nil while it
// is up.
func (c *Conn) Err() error {
	c.lk.Lock()
	defer c.lk.Unlock()
	if !c.lk.closed {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrDisconnected, c.lk.err)
}

// Shutdown fails every pending and later call through this connection's
// proxies with ErrDisconnected at once, as Close does, and stops serving
// the peer, but leaves the stream open until Close: for a transport that
// must finish its own goodbye on that stream's session first. host's
// Client.Close uses it before go-plugin asks the plugin to exit.
func (c *Conn) Shutdown() { c.end(errClosed, false) }

// shutdown ends the connection, closing the stream.
func (c *Conn) shutdown(cause error) { c.end(cause, true) }

// end ends the connection once, recording cause, and fails everything that
// waits on it; closeStream closes the stream too (also after an earlier
// Shutdown).
func (c *Conn) end(cause error, closeStream bool) {
	if closeStream {
		c.stopReaders()
	}
	c.lk.Lock()
	if c.lk.closed {
		c.lk.Unlock()
		if closeStream {
			_ = c.rwc.Close()
		}
		return
	}
	c.lk.closed = true
	c.ended.Store(true)
	c.lk.err = cause
	pending, serving, leftover := c.lk.pending, c.lk.serving, c.lk.exports
	c.lk.pending, c.lk.serving = map[uint64]*pendingCall{}, map[uint64]context.CancelFunc{}
	c.lk.exports, c.lk.exportKeys, c.lk.imports = map[uint64]*export{}, map[exportKey]uint64{}, map[uint64]*importEntry{}
	c.lk.releases, c.lk.heldReleases = nil, nil
	c.lk.Unlock()

	close(c.done)
	if closeStream {
		_ = c.rwc.Close()
	}
	for _, p := range pending {
		if !p.abandoned {
			p.ch <- nil
		}
	}
	for _, cancel := range serving {
		cancel()
	}
	if cause != errClosed {
		c.log.Debug("refbroker connection ended", "cause", cause)
	}
	if len(leftover) > 0 && c.log.IsDebug() {
		kinds := make(map[string]int)
		for _, x := range leftover {
			kinds[x.methods.t.String()]++
		}
		c.log.Debug("references still exported when the connection ended", "count", len(leftover), "by_type", kinds)
	}
}

func (c *Conn) disconnected(method string) error {
	c.lk.Lock()
	cause := c.lk.err
	c.lk.Unlock()
	return &callError{method: method, sentinel: ErrDisconnected, cause: cause}
}

// ---- frames ----

// frameRoom is the space kept at the front of every encoder buffer for the
// frame's length prefix, so a frame is written with one Write.
const frameRoom = binary.MaxVarintLen64

var encoderPool = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 512)} }}

func (c *Conn) newEncoder() *encoder {
	e := encoderPool.Get().(*encoder)
	e.buf = e.buf[:frameRoom]
	e.conn = c
	e.depth = 0
	e.sent = e.sent[:0]
	return e
}

func freeEncoder(e *encoder) {
	e.conn = nil
	clear(e.home)
	e.home = e.home[:0]
	if cap(e.buf) <= maxPooled {
		encoderPool.Put(e)
	}
}

// maxPooled is the largest buffer kept for reuse. Reusing large buffers
// matters: fresh memory costs page faults and garbage collections.
const maxPooled = 8 << 20

// framePool recycles the buffers incoming messages are read into, once
// they are decoded. Decoding copies everything it keeps.
var framePool sync.Pool // *[]byte

func getFrame(n int) []byte {
	if p, _ := framePool.Get().(*[]byte); p != nil && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]byte, n, max(n, 512))
}

func putFrame(b []byte) {
	if cap(b) <= maxPooled {
		framePool.Put(&b)
	}
}

// discard drops a message that will not be sent, taking back the
// references it exported.
func (c *Conn) discard(e *encoder) {
	c.unsend(e.sent)
	freeEncoder(e)
}

// send writes e's message as one frame and frees e.
func (c *Conn) send(e *encoder) error {
	defer freeEncoder(e)
	n := len(e.buf) - frameRoom
	if n > c.maxMsg {
		c.unsend(e.sent)
		return fmt.Errorf("message of %d bytes exceeds the limit of %d (Options.MaxMessageSize)", n, c.maxMsg)
	}
	var hdr [binary.MaxVarintLen64]byte
	hn := binary.PutUvarint(hdr[:], uint64(n))
	start := frameRoom - hn
	copy(e.buf[start:], hdr[:hn])
	if err := c.write(e.buf[start:]); err != nil {
		c.shutdown(fmt.Errorf("the other side went away (%w)", err))
		return ErrDisconnected
	}
	return nil
}

// write sends one frame, or queues it behind the frame being written; it
// may return before the frame is on the wire, but frames always go out in
// the order write was called.
func (c *Conn) write(frame []byte) error {
	q := &c.wq
	q.Lock()
	if q.err != nil {
		err := q.err
		q.Unlock()
		return err
	}
	if q.writing {
		q.pending = append(q.pending, frame...)
		q.Unlock()
		return nil
	}
	q.writing = true
	q.Unlock()
	return c.flush(frame, frame)
}

// flush writes buf, then whatever was queued meanwhile, while holding the
// writer role. mine is the caller's own frame (never kept as spare). So
// one caller is not kept writing for others forever, after a few rounds it
// hands the role to a new goroutine.
func (c *Conn) flush(buf, mine []byte) error {
	q := &c.wq
	for round := 0; ; round++ {
		if round == 16 {
			go func() {
				if err := c.flush(buf, nil); err != nil {
					c.shutdown(fmt.Errorf("the other side went away (%w)", err))
				}
			}()
			return nil
		}
		_, err := c.rwc.Write(buf)
		q.Lock()
		if (mine == nil || &buf[0] != &mine[0]) && cap(buf) <= 1<<20 {
			q.spare = buf[:0]
		}
		if err != nil || len(q.pending) == 0 {
			q.writing = false
			if err != nil {
				q.err = err
			}
			q.Unlock()
			return err
		}
		buf, q.pending = q.pending, q.spare
		q.spare = nil
		q.Unlock()
	}
}

// readOne reads and dispatches one frame, and returns the call in it for
// the caller to serve, if it is one. ok is false once the connection has
// ended.
func (c *Conn) readOne() (in *incoming, ok bool) {
	br := c.rd.br
	n, err := binary.ReadUvarint(br)
	if err != nil {
		c.shutdown(fmt.Errorf("the other side went away (%w)", err))
		return nil, false
	}
	if n > uint64(c.maxMsg) {
		if err := c.refuseOversize(br, n); err != nil {
			c.shutdown(fmt.Errorf("the other side went away mid-message (%w)", err))
			return nil, false
		}
		return nil, true
	}
	buf := getFrame(int(n))
	if _, err := io.ReadFull(br, buf); err != nil {
		c.shutdown(fmt.Errorf("the other side went away mid-message (%w)", err))
		return nil, false
	}
	in, err = c.dispatch(buf)
	if err != nil {
		c.log.Warn("refbroker: closing the connection after a bad message", "error", err)
		c.shutdown(err)
		return nil, false
	}
	return in, true
}

// refuseOversize skips a message over the size limit without holding it
// in memory, and fails the call it belonged to, so one oversized message
// costs one call, not the connection.
func (c *Conn) refuseOversize(br *bufio.Reader, n uint64) error {
	head := make([]byte, min(n, 16))
	if _, err := io.ReadFull(br, head); err != nil {
		return err
	}
	if _, err := io.CopyN(io.Discard, br, int64(n)-int64(len(head))); err != nil {
		return err
	}
	tooBig := fmt.Errorf("refbroker: a message of %d bytes exceeds the receiver's limit of %d (Options.MaxMessageSize)", n, c.maxMsg)
	d := &decoder{buf: head}
	typ, seq := d.byte1(), d.uvarint()
	if d.err != nil {
		c.log.Warn("refbroker: dropped an oversized message", "bytes", n)
		return nil
	}
	switch typ {
	case msgCall, msgBootstrap:
		c.reply(seq, statusRejected, tooBig)
	case msgReturn:
		e := &encoder{}
		e.byte1(statusFailed)
		encodeError(e, tooBig, 0)
		c.deliver(seq, &decoder{buf: e.buf, conn: c})
	default:
		c.log.Warn("refbroker: dropped an oversized message", "type", typ, "bytes", n)
	}
	return nil
}

// dispatch handles one message, except that it returns a call, for the
// reader to serve. An error means the stream cannot be trusted any more.
func (c *Conn) dispatch(buf []byte) (serve *incoming, err error) {
	d := &decoder{buf: buf, conn: c, pooled: true}
	if c.ended.Load() { // after Shutdown: the peer is no longer served
		d.release()
		return nil, nil
	}
	handedOff := false
	defer func() {
		if !handedOff {
			d.release()
		}
	}()
	switch t := d.byte1(); t {
	case msgCall:
		c.decoding(d)
		serve, err = c.startServing(d, false)
		handedOff = err == nil
		return serve, err
	case msgBootstrap:
		_, err = c.startServing(d, true)
		return nil, err
	case msgReturn:
		c.decoding(d)
		seq := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		handedOff = c.deliver(seq, d)
	case msgCancel:
		seq := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		c.lk.Lock()
		cancel := c.lk.serving[seq]
		c.lk.Unlock()
		if cancel != nil {
			cancel()
		}
	case msgRelease:
		return nil, c.applyReleases(d)
	case msgTypeInfo:
		return nil, c.learnPeerType(d)
	case msgDescribe:
		seq := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		go c.serveDescribe(seq)
	case msgCallJSON:
		seq, object, method := d.uvarint(), d.string(), d.string()
		n := d.length(1)
		args := make([][]byte, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			args = append(args, bytes.Clone(d.bytes()))
		}
		if d.err != nil {
			return nil, d.err
		}
		go c.serveCallJSON(seq, object, method, args)
	default:
		if d.err != nil {
			return nil, d.err
		}
		return nil, malformed("unknown message type %d", t)
	}
	return nil, nil
}

// ---- calling ----

// call calls method m of the peer's export target with args, and decodes
// the results into outs (settable, one per result of m, error included).
// The returned error is the broker's: the method's own error result is in
// outs.
func (c *Conn) call(ctx context.Context, target uint64, m *methodPlan, args, outs []reflect.Value) error {
	fp := m.plan
	return c.roundTrip(ctx, m.full, fp, outs, func(e *encoder, seq uint64) error {
		e.byte1(msgCall)
		e.uvarint(seq)
		e.uvarint(target)
		e.string(m.name)
		switch {
		case !fp.ctx:
			e.byte1(ctxNone)
		case ctx == nil:
			e.byte1(ctxPlain)
		default:
			if dl, ok := ctx.Deadline(); ok {
				e.byte1(ctxDeadline)
				e.varint(dl.UnixNano())
			} else {
				e.byte1(ctxPlain)
			}
		}
		first := 1
		if fp.ctx {
			first = 2
		}
		for i, a := range args {
			if err := fp.in[i].enc(e, a); err != nil {
				return fmt.Errorf("refbroker: %s: parameter %d: %w", m.full, i+first, err)
			}
		}
		return nil
	})
}

// roundTrip sends the message build writes, waits for its return and
// decodes the results into outs with plan.
func (c *Conn) roundTrip(ctx context.Context, name string, plan *funcPlan, outs []reflect.Value, build func(*encoder, uint64) error) error {
	var ctxDone <-chan struct{}
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		ctxDone = ctx.Done()
	}
	p := &pendingCall{ch: make(chan *decoder, 1), plan: plan}
	c.lk.Lock()
	if c.lk.closed {
		c.lk.Unlock()
		return c.disconnected(name)
	}
	c.lk.seq++
	seq := c.lk.seq
	c.lk.pending[seq] = p
	c.lk.Unlock()

	e := c.newEncoder()
	if err := build(e, seq); err != nil {
		c.discard(e)
		c.forget(seq)
		return err
	}
	if len(e.sent) > 0 {
		p.sent = slices.Clone(e.sent)
	}
	if err := c.send(e); err != nil {
		c.forget(seq)
		if errors.Is(err, ErrDisconnected) {
			return c.disconnected(name)
		}
		return fmt.Errorf("refbroker: %s: %w", name, err)
	}
	c.callsMade.Add(1)
	c.needReader()
	// The peer hears of a cancellation as soon as it happens, even while
	// this goroutine is busy (say, serving a callback of the same call).
	stop := func() bool { return false }
	if ctxDone != nil {
		stop = context.AfterFunc(ctx, func() { c.sendCancel(seq) })
	}
	select {
	case d := <-p.ch:
		stop()
		if d == nil {
			return c.disconnected(name)
		}
		return c.readReturn(d, name, plan, outs, p.sent)
	case <-ctxDone:
		// ctx.Done closes before AfterFunc's func is started, so stopping
		// it here can win the race: then the cancel is ours to send.
		if stop() {
			go c.sendCancel(seq)
		}
		c.abandon(seq, p)
		return ctx.Err()
	}
}

// forget removes a call that was never sent.
func (c *Conn) forget(seq uint64) {
	c.lk.Lock()
	delete(c.lk.pending, seq)
	c.lk.Unlock()
}

// abandon stops waiting for call seq. Its return, whenever it comes, is
// still decoded, so the references in it are counted and then released.
func (c *Conn) abandon(seq uint64, p *pendingCall) {
	c.lk.Lock()
	_, waiting := c.lk.pending[seq]
	if waiting {
		p.abandoned = true
	}
	c.lk.Unlock()
	if !waiting {
		// The reader (or shutdown) took the call out of pending and puts
		// its return (nil on shutdown) in p.ch right after, without
		// blocking: receiving it here waits only for that.
		d := <-p.ch
		go c.drain(p, d)
	}
}

func (c *Conn) sendCancel(seq uint64) {
	e := c.newEncoder()
	e.byte1(msgCancel)
	e.uvarint(seq)
	_ = c.send(e)
}

// deliver hands a return to its caller, and reports whether it did.
func (c *Conn) deliver(seq uint64, d *decoder) bool {
	c.lk.Lock()
	p := c.lk.pending[seq]
	delete(c.lk.pending, seq)
	abandoned := p != nil && p.abandoned
	c.lk.Unlock()
	switch {
	case p == nil:
		c.log.Warn("refbroker: return for an unknown call", "seq", seq)
		return false
	case abandoned:
		go c.drain(p, d)
	default:
		p.ch <- d
	}
	return true
}

// drain decodes a return nobody waits for and drops the results.
func (c *Conn) drain(p *pendingCall, d *decoder) {
	if d == nil {
		return
	}
	outs := make([]reflect.Value, len(p.plan.out))
	for i, oc := range p.plan.out {
		outs[i] = reflect.New(oc.t).Elem()
	}
	_ = c.readReturn(d, "", p.plan, outs, p.sent)
}

// readReturn decodes a return into outs. sent are the references the call
// sent, taken back if the peer rejected the call unread.
func (c *Conn) readReturn(d *decoder, name string, plan *funcPlan, outs []reflect.Value, sent []uint64) (err error) {
	defer d.release()
	defer func() {
		if p := recover(); p != nil { // a proxy constructor or unmarshaler panicked
			err = fmt.Errorf("refbroker: %s: decoding results panicked: %v", name, p)
		}
	}()
	switch status := d.byte1(); status {
	case statusOK:
		for i, oc := range plan.out {
			if d.err != nil {
				break
			}
			oc.dec(d, outs[i])
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
		return err
	default:
		if d.err != nil {
			return fmt.Errorf("refbroker: %s: %w", name, d.err)
		}
		return fmt.Errorf("refbroker: %s: %w", name, malformed("bad return status %d", status))
	}
}

// ---- serving ----

// incoming is a call from the peer, with its header read.
type incoming struct {
	seq    uint64
	target uint64
	method string
	ctx    context.Context
	cancel context.CancelFunc
	d      *decoder
	// bootstrap only
	iface string
	want  [][2]string
}

// startServing reads a call's header on the reader goroutine, so that its
// context is registered before a cancel for it can arrive, and returns the
// call for the reader to serve (a bootstrap runs on a goroutine of its
// own).
func (c *Conn) startServing(d *decoder, bootstrap bool) (*incoming, error) {
	in := &incoming{seq: d.uvarint(), d: d}
	if bootstrap {
		in.method = d.string()
		in.iface = d.string()
		n := d.length(2)
		for i := 0; i < n && d.err == nil; i++ {
			in.want = append(in.want, [2]string{d.string(), d.string()})
		}
		if d.err != nil {
			return nil, d.err
		}
		go c.serveBootstrap(in)
		return nil, nil
	}
	in.target = d.uvarint()
	in.method = d.string()
	flag := d.byte1()
	var deadline int64
	if flag == ctxDeadline {
		deadline = d.varint()
	}
	if d.err != nil {
		return nil, d.err
	}
	switch flag {
	case ctxNone:
	case ctxPlain:
		in.ctx, in.cancel = context.WithCancel(context.Background())
	case ctxDeadline:
		in.ctx, in.cancel = context.WithDeadline(context.Background(), time.Unix(0, deadline))
	default:
		return nil, malformed("bad context flag %d", flag)
	}
	if in.cancel != nil {
		c.lk.Lock()
		c.lk.serving[in.seq] = in.cancel
		c.lk.Unlock()
	}
	return in, nil
}

func (c *Conn) serveCall(in *incoming) {
	defer in.d.release() // at the latest; normally right after the arguments
	if in.cancel != nil {
		defer func() {
			c.lk.Lock()
			delete(c.lk.serving, in.seq)
			c.lk.Unlock()
			in.cancel()
		}()
	}
	c.lk.Lock()
	x := c.lk.exports[in.target]
	c.lk.Unlock()
	if x == nil {
		c.reply(in.seq, statusRejected, fmt.Errorf("refbroker: call of %s on unknown reference #%d (released, or never sent)", in.method, in.target))
		return
	}
	m := x.methods.methods[in.method]
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
		ctx := in.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		args = append(args, reflect.ValueOf(&ctx).Elem())
	}
	d := in.d
	for _, ic := range fp.in {
		v := reflect.New(ic.t).Elem()
		ic.dec(d, v)
		if d.err != nil {
			break
		}
		args = append(args, v)
	}
	if d.err == nil && d.remaining() != 0 {
		d.fail(malformed("%d bytes left after the arguments (does the caller have the same signature, %s?)", d.remaining(), fp.t))
	}
	if d.err != nil {
		c.replyFailed(in.seq, fmt.Errorf("refbroker: %s: decoding arguments: %w", m.full, d.err))
		return
	}
	d.release()
	fn := x.recv
	if m.index >= 0 {
		fn = x.recv.Method(m.index)
	}
	outs, err := c.safeCall(m, fn, args)
	if err != nil {
		c.replyFailed(in.seq, err)
		return
	}
	e := c.newEncoder()
	e.byte1(msgReturn)
	e.uvarint(in.seq)
	e.byte1(statusOK)
	for i, oc := range fp.out {
		if err := oc.enc(e, outs[i]); err != nil {
			c.discard(e)
			c.replyFailed(in.seq, fmt.Errorf("refbroker: %s: result %d: %w", m.full, i+1, err))
			return
		}
	}
	if err := c.send(e); err != nil && !errors.Is(err, ErrDisconnected) {
		c.replyFailed(in.seq, fmt.Errorf("refbroker: %s: %w", m.full, err))
	}
}

// safeCall is the one place user code is called on the peer's behalf. A
// panic becomes an error carrying the panic value; the stack is logged.
func (c *Conn) safeCall(m *methodPlan, fn reflect.Value, args []reflect.Value) (outs []reflect.Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic in a method called by the other side", "method", m.full, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("refbroker: %s panicked: %v", m.full, p)
		}
	}()
	if m.plan.variadic {
		return fn.CallSlice(args), nil
	}
	return fn.Call(args), nil
}

func (c *Conn) replyFailed(seq uint64, err error) { c.reply(seq, statusFailed, err) }

// reply sends a return carrying only an error.
func (c *Conn) reply(seq uint64, status byte, err error) {
	e := c.newEncoder()
	e.byte1(msgReturn)
	e.uvarint(seq)
	e.byte1(status)
	encodeError(e, err, 0)
	_ = c.send(e)
}

// ---- bootstrap ----

// Dispense asks the peer for the root object it serves under name, as the
// interface type T. T must be an interface with a registered proxy; every
// type reachable from its methods must be able to cross. The peer checks
// that its object has every method of T with the same signature.
func Dispense[T any](c *Conn, name string) (T, error) {
	var zero T
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Interface || classify(t) != kindInterface {
		return zero, fmt.Errorf("refbroker: Dispense[%s](%q): %s is not an interface type with methods", t, name, t)
	}
	if err := checkContract(t); err != nil {
		return zero, fmt.Errorf("refbroker: Dispense[%s](%q): %w", t, name, err)
	}
	rc, err := codecFor(t)
	if err != nil {
		return zero, err
	}
	plan := &funcPlan{out: []*codec{rc}}
	var out T
	outs := []reflect.Value{reflect.ValueOf(&out).Elem()}
	err = c.roundTrip(context.Background(), fmt.Sprintf("Dispense(%q)", name), plan, outs, func(e *encoder, seq uint64) error {
		e.byte1(msgBootstrap)
		e.uvarint(seq)
		e.string(name)
		e.string(t.String())
		e.uvarint(uint64(t.NumMethod()))
		for i := range t.NumMethod() {
			m := t.Method(i)
			e.string(m.Name)
			e.string(m.Type.String())
		}
		return nil
	})
	if err != nil {
		return zero, err
	}
	return out, nil
}

func (c *Conn) serveBootstrap(in *incoming) {
	obj, ok := c.roots[in.method]
	if !ok || obj == nil {
		names := slices.Sorted(maps.Keys(c.roots))
		c.replyFailed(in.seq, fmt.Errorf("refbroker: no object named %q is served here (served: %q)", in.method, names))
		return
	}
	v := reflect.ValueOf(obj)
	methods, err := rootMethods(v, in.iface, in.want)
	if err != nil {
		c.replyFailed(in.seq, fmt.Errorf("refbroker: object %q %w", in.method, err))
		return
	}
	id := c.addExport(&export{val: v, recv: v, methods: methods, count: 1})
	e := c.newEncoder()
	e.byte1(msgReturn)
	e.uvarint(in.seq)
	e.byte1(statusOK)
	e.byte1(refMine)
	e.uvarint(id)
	e.uvarint(0) // the root's type was checked by the bootstrap itself
	_ = c.send(e)
}

// ---- references ----

// addExport enters x into the export table, or counts one more send of the
// export with the same key, and returns its ID.
func (c *Conn) addExport(x *export) uint64 {
	c.lk.Lock()
	defer c.lk.Unlock()
	if x.key.t != nil {
		if id, ok := c.lk.exportKeys[x.key]; ok {
			c.lk.exports[id].count++
			return id
		}
	}
	c.lk.nextExport++
	id := c.lk.nextExport
	c.lk.exports[id] = x
	c.exportsCreated.Add(1)
	if x.key.t != nil {
		c.lk.exportKeys[x.key] = id
	}
	return id
}

// resend counts one more send of the export with key, if there is one.
func (c *Conn) resend(key exportKey) (uint64, bool) {
	c.lk.Lock()
	defer c.lk.Unlock()
	id, ok := c.lk.exportKeys[key]
	if ok {
		c.lk.exports[id].count++
	}
	return id, ok
}

// encodeRef writes v, a non-interface-data value in a position of static
// type t (an interface with methods, a func, or any), by reference.
func (c *Conn) encodeRef(e *encoder, v reflect.Value, t reflect.Type) error {
	if v.IsNil() {
		e.byte1(refNil)
		return nil
	}
	if r := refOf(v); r != nil && r.conn == c {
		if r.released.Load() {
			return &callError{method: "sending " + r.String() + " back", sentinel: ErrReleased}
		}
		e.byte1(refHome)
		e.uvarint(r.id)
		e.home = append(e.home, r) // a release must not overtake this message
		return nil
	}
	// Sending an object again reuses its export: look it up before
	// building a new one.
	var key exportKey
	if v.Kind() == reflect.Func {
		key = exportKey{obj: funcIdentity(v), t: t}
	} else if dyn := v.Elem(); dyn.Comparable() {
		key = exportKey{obj: dyn.Interface(), t: t}
	}
	id, ok := uint64(0), false
	if key.t != nil {
		id, ok = c.resend(key)
	}
	if !ok {
		x, err := newExport(v, t, key)
		if err != nil {
			return err
		}
		id = c.addExport(x)
	}
	tid, err := c.typeID(t)
	if err != nil {
		c.unsend([]uint64{id})
		return err
	}
	e.sent = append(e.sent, id)
	e.byte1(refMine)
	e.uvarint(id)
	e.uvarint(tid)
	return nil
}

// newExport builds the export of v sent as static type t.
func newExport(v reflect.Value, t reflect.Type, key exportKey) (*export, error) {
	methods, err := methodsFor(t)
	if err != nil {
		return nil, err
	}
	x := &export{methods: methods, count: 1, key: key}
	if v.Kind() == reflect.Func {
		x.val = v
	} else {
		x.val = reflect.New(t).Elem()
		x.val.Set(v)
	}
	x.recv = x.val
	if a, ok := adapters[t]; ok {
		x.recv = a.wrap(x.val)
	}
	return x, nil
}

// decodeRef reads a reference in a position of static type t into v.
func (c *Conn) decodeRef(d *decoder, v reflect.Value, t reflect.Type) {
	switch tag := d.byte1(); tag {
	case refNil:
		v.SetZero()
	case refMine:
		id, tid := d.uvarint(), d.uvarint()
		if d.err != nil {
			return
		}
		if err := c.checkPeerType(tid, t); err != nil {
			d.fail(err)
			return
		}
		r, err := c.importRef(id, t)
		if err != nil {
			d.fail(err)
			return
		}
		pv, err := r.value()
		if err != nil {
			d.fail(err)
			return
		}
		v.Set(pv)
	case refHome:
		id := d.uvarint()
		if d.err != nil {
			return
		}
		c.lk.Lock()
		x := c.lk.exports[id]
		c.lk.Unlock()
		if x == nil {
			d.fail(fmt.Errorf("refbroker: the peer sent back reference #%d, which is not exported here (released, or never sent)", id))
			return
		}
		obj := x.val
		if obj.Kind() == reflect.Interface {
			obj = obj.Elem()
		}
		if !obj.Type().AssignableTo(t) {
			d.fail(fmt.Errorf("refbroker: the peer sent back reference #%d (%s) where %s is expected", id, obj.Type(), t))
			return
		}
		v.Set(obj)
	default:
		if d.err == nil {
			d.fail(malformed("bad reference tag %d at byte %d", tag, d.off-1))
		}
	}
}

// encodeAny writes the value of an `any` position: registered data by
// value, anything else by reference.
func (c *Conn) encodeAny(e *encoder, v reflect.Value) error {
	if v.IsNil() {
		e.byte1(refNil)
		return nil
	}
	dyn := v.Elem()
	if name, ok := registeredName(dyn.Type()); ok {
		dc, err := codecFor(dyn.Type())
		if err != nil {
			return err
		}
		if !e.enter() {
			return depthError(dyn.Type())
		}
		defer e.leave()
		e.byte1(refData)
		e.string(name)
		return dc.enc(e, dyn)
	}
	return c.encodeRef(e, v, anyType)
}

func (c *Conn) decodeAny(d *decoder, v reflect.Value) {
	if d.err != nil {
		return
	}
	if d.off < len(d.buf) && d.buf[d.off] == refData {
		d.off++
		name := d.string()
		if d.err != nil {
			return
		}
		t, ok := registeredType(name)
		if !ok {
			d.fail(fmt.Errorf("refbroker: the peer sent a %s in an `any`, which is not registered here (hint: refbroker.RegisterType)", name))
			return
		}
		dc, err := codecFor(t)
		if err != nil {
			d.fail(err)
			return
		}
		if !d.enter() {
			return
		}
		defer d.leave()
		x := reflect.New(t).Elem()
		dc.dec(d, x)
		if d.err == nil {
			v.Set(x)
		}
		return
	}
	c.decodeRef(d, v, anyType)
}

// ---- releases ----

// flushReleases sends queued releases in batches. Cleanups only queue, so
// they never block on I/O.
func (c *Conn) flushReleases() {
	defer c.workers.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.releaseReady:
		}
		c.lk.Lock()
		batch := c.lk.releases
		c.lk.releases = nil
		c.lk.Unlock()
		if len(batch) == 0 {
			continue
		}
		e := c.newEncoder()
		e.byte1(msgRelease)
		e.uvarint(uint64(len(batch)))
		for _, r := range batch {
			e.uvarint(r.id)
			e.uvarint(r.count)
		}
		_ = c.send(e)
	}
}

// A message may carry a reference home (an export of ours) and be
// decoded on another goroutine after the reader has moved on; a release of
// that export read afterwards must not drop it first. So each call and
// return gets a number while it is decoded, and a release waits until
// every message read before it has been decoded.

// decoding marks d's message as being decoded; d.release ends that.
func (c *Conn) decoding(d *decoder) {
	c.lk.Lock()
	c.lk.msgNo++
	d.msgNo = c.lk.msgNo
	c.lk.inDecode[d.msgNo] = struct{}{}
	c.lk.Unlock()
}

// decoded ends decoding of message n and applies the releases that were
// waiting for it.
func (c *Conn) decoded(n uint64) {
	c.lk.Lock()
	delete(c.lk.inDecode, n)
	var unknown []uint64
	if len(c.lk.heldReleases) > 0 && !c.lk.closed {
		oldest := uint64(math.MaxUint64)
		for m := range c.lk.inDecode {
			oldest = min(oldest, m)
		}
		i := 0
		for ; i < len(c.lk.heldReleases) && c.lk.heldReleases[i].after < oldest; i++ {
			unknown = c.applyLocked(c.lk.heldReleases[i].items, unknown)
		}
		c.lk.heldReleases = c.lk.heldReleases[i:]
	}
	c.lk.Unlock()
	c.warnUnknown(unknown)
}

// applyReleases handles the peer's release message: each names an export
// and how many of its sends the peer no longer holds.
func (c *Conn) applyReleases(d *decoder) error {
	n := d.length(2)
	items := make([]release, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		id, count := d.uvarint(), d.uvarint()
		if d.err == nil {
			items = append(items, release{id: id, count: count})
		}
	}
	if d.err != nil {
		return d.err
	}
	var unknown []uint64
	c.lk.Lock()
	if c.lk.closed {
		c.lk.Unlock()
		return nil
	}
	if len(c.lk.inDecode) > 0 || len(c.lk.heldReleases) > 0 {
		c.lk.heldReleases = append(c.lk.heldReleases, heldRelease{after: c.lk.msgNo, items: items})
	} else {
		unknown = c.applyLocked(items, nil)
	}
	c.lk.Unlock()
	c.warnUnknown(unknown)
	return nil
}

// heldRelease is a release waiting for messages read before it (up to
// message number after) to be decoded.
type heldRelease struct {
	after uint64
	items []release
}

func (c *Conn) applyLocked(items []release, unknown []uint64) []uint64 {
	for _, r := range items {
		if !c.dropSendsLocked(r.id, r.count) {
			unknown = append(unknown, r.id)
		}
	}
	return unknown
}

func (c *Conn) warnUnknown(ids []uint64) {
	if len(ids) > 0 {
		c.log.Warn("refbroker: the peer released references it did not hold", "ids", ids)
	}
}

// unsend takes back sends of references in a message that never reached
// the peer, or that it rejected unread.
func (c *Conn) unsend(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	c.lk.Lock()
	for _, id := range ids {
		c.dropSendsLocked(id, 1)
	}
	c.lk.Unlock()
}

// dropSendsLocked subtracts count sends from export id and drops it at
// zero. It reports false, changing nothing, if the export does not exist
// or has fewer sends.
func (c *Conn) dropSendsLocked(id, count uint64) bool {
	x := c.lk.exports[id]
	if x == nil || count > x.count {
		return false
	}
	x.count -= count
	if x.count == 0 {
		delete(c.lk.exports, id)
		if x.key.t != nil {
			delete(c.lk.exportKeys, x.key)
		}
		c.exportsDropped.Add(1)
	}
	return true
}

// Stats counts a connection's references and calls.
type Stats struct {
	Exports int // live: objects of this side that the peer holds references to
	Imports int // live: objects of the peer that this side holds proxies for
	Pending int // live: calls of this side awaiting their return

	CallsMade       uint64 // calls this side sent
	CallsServed     uint64 // calls of the peer this side ran
	ExportsCreated  uint64 // objects this side exported
	ExportsDropped  uint64 // exports dropped after the peer released every send
	ImportsCreated  uint64 // imports of the peer's objects this side began
	ImportsReleased uint64 // imports released (Release or garbage collection); Imports = created - released
}

// Stats returns the connection's current counts.
func (c *Conn) Stats() Stats {
	c.lk.Lock()
	s := Stats{Exports: len(c.lk.exports), Imports: len(c.lk.imports), Pending: len(c.lk.pending)}
	c.lk.Unlock()
	s.CallsMade, s.CallsServed = c.callsMade.Load(), c.callsServed.Load()
	s.ExportsCreated, s.ExportsDropped = c.exportsCreated.Load(), c.exportsDropped.Load()
	s.ImportsCreated, s.ImportsReleased = c.importsCreated.Load(), c.importsReleased.Load()
	return s
}
