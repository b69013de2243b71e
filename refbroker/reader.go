package refbroker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// The reader role: reading frames and dispatching each message.
//
// One goroutine at a time reads the stream: a reader goroutine (readLoop),
// or a caller reading for its own return. When a call arrives and nothing
// else is waiting to be read, the reader goroutine serves the call itself
// ("inline") instead of starting a goroutine for it: handing work to
// another goroutine wakes a second thread, and on a small machine that
// wake-up, not the broker's code, is most of a call's cost
// (BENCHMARKS.md). While the reader serves, nobody reads, so the role
// passes to another goroutine (a waiting server or a new one: servers.go)
// as soon as the stream must be read:
//
//   - a call of ours starts waiting for its return (needReader, from
//     roundTrip), typically the inline call calling back;
//   - the inline call has run through a tick of the watchdog (1–2 ms): it
//     may be blocked, waiting for its cancellation, or simply long, and
//     other messages must not wait for it.
//
// A caller that starts waiting while the reader serves inline (the inline
// call calling back, typically) first tries to borrow the role instead: it
// reads until its own return has come, then gives the role back to the
// inline call (callerread.go), so neither the call out nor its return
// needs a hand-off. The watchdog leaves an inline call whose role was
// borrowed since its last tick alone.
//
// A return awaited since before the reader went inline (another
// goroutine's call) is read when the inline call ends or at the watchdog's
// tick: the price of the shortcut, bounded by the watchdog.
//
// When its call returns, the goroutine that served inline goes back to
// reading if the role did not pass, and otherwise waits to serve calls
// aside (servers.go). Each inline call has an episode number, so a
// goroutine whose role passed cannot take it back.
//
// The same hand-off costs a caller on the other side of the call; on a
// side that serves nothing, callers read their own returns instead
// (callerread.go).
//
// The reader counts in workers (Close waits for it) only while it is a
// reader goroutine reading, not while it runs user code or while a caller
// reads: Close waits for the connection's own goroutines, never for
// methods it runs or for its callers.

// watchTick is the watchdog's period: an inline call that is seen running
// at two ticks in a row (so after 1–2 ticks) loses the reader role.
const watchTick = time.Millisecond

// watchIdleTicks is how many ticks without an inline call the watchdog
// waits before it stops; the next inline call starts it again (a
// goroutine: about a microsecond). Each tick wakes a thread of an
// otherwise idle process: lingering 50 ticks after each burst cost a
// plugin that was called once and then left alone 1.3–1.8 ms of CPU, which
// 50 plugins starting at once on two cores paid in time (BENCHMARKS.md,
// Many plugins). A tick at which an inline call holds the role is not
// idle; one at which a caller has borrowed it is (the borrower starts
// the watchdog again when it gives the role back to the inline call).
const watchIdleTicks = 3

// Who holds the reader role.
const (
	roleLoop   = iota // a reader goroutine (readLoop)
	roleCaller        // a caller, reading for its return
	roleFree          // nobody: see yield
)

// readerRole is the state of the reader role, under its own mutex.
type readerRole struct {
	sync.Mutex
	fr       frameReader
	spinner  *spinReader   // the stream under fr
	holder   int           // roleLoop, roleCaller or roleFree
	inline   atomic.Uint64 // the inline episode in progress; 0 while the reader reads
	episodes uint64        // the last episode number given out
	watching bool          // the watchdog goroutine runs
	stopped  bool          // the stream is closed: no new readers or watchdog
	callers  bool          // callers may take the free role: the stream has read deadlines, and the side no roots
	deadline bool          // the stream has read deadlines: callers may read (and borrow the role: callerread.go)
	lends    uint64        // times a caller borrowed the role from an inline call (the watchdog's, and tests')
	passes   uint64        // times a caller passed the role on with a call it read (tests)
	idle     *time.Timer   // takes the role back when it has been free for idleAfter
	armed    bool          // idle is set to fire
	sets     int           // times idle was set when the role was left free (tests)
	ticks    int           // the watchdog's ticks (tests)
	freedAt  time.Time     // when the role was last left free
	// plain counts returns read in a row with no call read between them;
	// callSince says a call was read since the last return. A side the
	// peer calls leaves the role free only after plainToYield.
	plain     int
	callSince bool
	freeFor   time.Duration // how long it may stay free: idleAfter or idleServing
	dueAt     time.Time     // when idle, if armed, fires
	// idleAfter and idleServing are idleRead and idleReadServing, but for
	// tests that need the role to stay free.
	idleAfter, idleServing time.Duration
}

// readBuffer is the size of a connection's read buffer. Small messages
// are read many at a time through it; a frame larger than it is read
// straight into its own buffer. (64 KiB measured no faster on small or
// megabyte messages, and it is the largest memory a connection keeps.)
const readBuffer = 16 << 10

func (c *Conn) initReader(rd io.Reader, spin bool) {
	c.rd.spinner = newSpinReader(rd, spin)
	c.rd.fr.br = bufio.NewReaderSize(c.rd.spinner, readBuffer)
	_, c.rd.deadline = c.rwc.(readDeadliner)
	c.rd.callers = c.rd.deadline && len(c.roots) == 0
	c.rd.idle = time.AfterFunc(time.Hour, c.idleTakeBack)
	c.rd.idle.Stop()
	c.rd.idleAfter, c.rd.idleServing = idleRead, idleReadServing
}

// readLoop reads and dispatches frames until the connection ends, until
// the reader role passes on while this goroutine serves a call inline, or
// until it leaves the role free (yield). It reports whether the goroutine
// may serve calls aside now: the role passed on while it served, or it
// left the role free (so that the next reader goroutine, or server,
// starts on the stack this one grew).
func (c *Conn) readLoop() bool {
	served := false // the last frame was a call, served inline
	for {
		c.rd.spinner.deciding.Store(true) // before armLoop counts: see wakeReaderToSpin
		c.armLoop(served)
		in, typ, st := c.readOne()
		c.rd.spinner.deciding.Store(false)
		c.rd.spinner.disarm()
		served = false
		switch st {
		case readEnded:
			c.workers.Done()
			return false
		case readTimeout: // a deadline an interrupted caller left: not ours
			c.setReadDeadline(time.Time{})
			continue
		}
		if in == nil {
			if typ == msgReturn && c.yield() {
				return true
			}
			continue
		}
		if c.rd.fr.br.Buffered() > 0 { // more is waiting: serve this call aside
			c.rd.spinner.arm(false) // calls come at once: no spinning
			c.serveAside(in)
			continue
		}
		ep := c.goInline()
		c.serveCall(in)
		served = true
		if !c.resume(ep) {
			return true
		}
	}
}

// goInline starts an inline episode: the reader stops counting as a
// worker, and the watchdog runs.
func (c *Conn) goInline() uint64 {
	c.rd.Lock()
	defer c.rd.Unlock()
	c.rd.episodes++
	ep := c.rd.episodes
	c.rd.inline.Store(ep)
	c.watchLocked()
	c.workers.Done()
	return ep
}

// watchLocked starts the watchdog unless it runs. c.rd is locked.
func (c *Conn) watchLocked() {
	if !c.rd.watching && !c.rd.stopped {
		c.rd.watching = true
		c.workers.Add(1)
		go c.watch()
	}
}

// resume ends inline episode ep. It reports whether the goroutine is
// still the reader (then it counts as a worker again); false if the role
// passed on meanwhile, or a caller borrowed it and still reads (it passes
// the role on when it has its return), or the connection's stream is
// closed.
func (c *Conn) resume(ep uint64) bool {
	c.rd.Lock()
	defer c.rd.Unlock()
	if c.rd.inline.Load() != ep {
		return false
	}
	c.rd.inline.Store(0)
	if c.rd.stopped || c.rd.holder == roleCaller {
		return false
	}
	c.workers.Add(1)
	return true
}

// needReader makes sure the stream is being read: if the reader is
// serving a call inline, the role passes to a new goroutine.
func (c *Conn) needReader() {
	if c.rd.inline.Load() == 0 {
		return
	}
	c.rd.Lock()
	c.handOffLocked()
	c.rd.Unlock()
}

// handOffLocked passes the reader role from the inline episode in
// progress, if any, to another goroutine (startReader), unless a caller
// has borrowed it and reads. c.rd is locked.
func (c *Conn) handOffLocked() {
	if c.rd.inline.Load() == 0 || c.rd.stopped || c.rd.holder == roleCaller {
		return
	}
	c.rd.inline.Store(0)
	c.workers.Add(1)
	c.startReader()
}

// stopReaders marks the stream closed for the reader role: no goroutine
// becomes the reader, the watchdog or the flusher from now on, so Close's
// wait for the workers ends.
func (c *Conn) stopReaders() {
	c.rd.Lock()
	c.rd.stopped = true
	c.rd.idle.Stop()
	c.rd.Unlock()
}

// watch is the watchdog: every tick, an inline episode already running at
// the previous tick loses the reader role, unless a caller borrowed the
// role since (the inline call is calling out, and the stream is read
// during each call) or holds it now. It stops after watchIdleTicks ticks
// without inline calls, or when the connection ends.
func (c *Conn) watch() {
	defer c.workers.Done()
	t := time.NewTimer(watchTick)
	defer t.Stop()
	var lastInline, lastEpisodes, lastLends uint64
	idle := 0
	for {
		select {
		case <-c.done:
			c.rd.Lock()
			c.rd.watching = false
			c.rd.Unlock()
			return
		case <-t.C:
		}
		c.rd.Lock()
		c.rd.ticks++
		cur := c.rd.inline.Load()
		if cur != 0 && cur == lastInline && c.rd.lends == lastLends {
			c.handOffLocked()
		}
		// A tick while an inline call holds the role is never idle; while
		// a caller has borrowed it, someone reads, and the borrower
		// starts the watchdog again when it gives the role back
		// (giveBackRole).
		if (cur == 0 || c.rd.holder == roleCaller) && c.rd.episodes == lastEpisodes && c.rd.lends == lastLends {
			idle++
		} else {
			idle = 0
		}
		lastInline, lastEpisodes, lastLends = cur, c.rd.episodes, c.rd.lends
		if idle >= watchIdleTicks || c.rd.stopped {
			c.rd.watching = false
			c.rd.Unlock()
			return
		}
		c.rd.Unlock()
		t.Reset(watchTick)
	}
}

// Outcomes of readOne.
const (
	readOK      = iota
	readEnded   // the connection has ended
	readTimeout // a read deadline passed; the frame reader kept its place
)

// readOne reads and dispatches one frame, and returns the call in it for
// the caller to serve, if it is one, and the frame's message type.
func (c *Conn) readOne() (in *incoming, typ byte, st int) {
	buf, over, err := c.rd.fr.next(c.maxMsg)
	switch {
	case err != nil && isTimeout(err):
		// An interrupted caller's (or, after Shutdown, one told the
		// connection ended): the stream stays open until Close.
		return nil, 0, readTimeout
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.shutdown(fmt.Errorf("the other side went away mid-message (%w)", err))
		return nil, 0, readEnded
	case err != nil:
		c.wentAway(err)
		return nil, 0, readEnded
	case over != nil:
		c.refuseOversize(over)
		return nil, 0, readOK
	}
	if len(buf) > 0 {
		typ = buf[0]
	}
	switch typ { // the holder of the role alone reads and writes these
	case msgCall:
		c.rd.callSince = true
	case msgReturn:
		if c.rd.callSince {
			c.rd.plain = 0
		} else {
			c.rd.plain++
		}
		c.rd.callSince = false
	}
	m := c.newInbound(buf, true, c.rd.fr.frameBase)
	m.placed = c.rd.fr.placed
	in, err = c.dispatch(m)
	if err != nil {
		c.log.Warn("refbroker: closing the connection after a bad message", "error", err)
		c.shutdown(err)
		return nil, typ, readEnded
	}
	return in, typ, readOK
}

// refuseOversize fails the call an oversized message belonged to (the
// frame reader skipped it without holding it in memory), so one oversized
// message costs one call, not the connection.
func (c *Conn) refuseOversize(o *oversized) {
	tooBig := &tooLarge{fmt.Sprintf("refbroker: a message of %d bytes exceeds the receiver's limit of %d (Options.MaxMessageSize)", o.size, c.maxMsg)}
	d := &decoder{buf: o.head}
	typ, seq := d.byte1(), d.uvarint()
	switch {
	case d.err != nil:
		c.log.Warn("refbroker: dropped an oversized message", "bytes", o.size)
	case typ == msgCall || typ == msgBootstrap:
		c.sendRefusal(seq, tooBig)
	case typ == msgReturn:
		c.deliver(seq, reply{err: tooBig})
	default:
		c.log.Warn("refbroker: dropped an oversized message", "type", typ, "bytes", o.size)
	}
}

// dispatch handles one message, except that it returns a call, for the
// reader to serve. An error means the stream cannot be trusted any more.
func (c *Conn) dispatch(m *inbound) (serve *incoming, err error) {
	if c.ended.Load() { // after Shutdown: the peer is no longer served
		c.finish(m)
		return nil, nil
	}
	handedOff := false
	defer func() {
		if !handedOff {
			c.finish(m)
		}
	}()
	d := &m.d
	switch t := d.byte1(); t {
	case msgCall:
		c.beginDecode(m)
		serve, err = c.readCall(m)
		handedOff = err == nil
		return serve, err
	case msgReturn:
		c.beginDecode(m)
		seq := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		handedOff = c.deliver(seq, reply{m: m})
	case msgCancel:
		seq := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		return nil, c.readCancel(d, seq)
	case msgRelease:
		return nil, c.applyReleases(d)
	case msgBootstrap:
		req, err := readBootstrap(d)
		if err != nil {
			return nil, err
		}
		return nil, c.serveRequest(req.seq, fmt.Sprintf("Dispense(%q)", req.name), len(m.frame), nil, func() { c.serveBootstrap(req) })
	case msgPing:
		seq := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		c.answerPing(seq)
	case msgTypeInfo:
		return nil, c.learnPeerType(d)
	case msgLayouts:
		return nil, c.learnLayouts(d)
	case msgDescribe:
		seq := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		return nil, c.serveRequest(seq, "Describe", len(m.frame), nil, func() { c.serveDescribe(seq) })
	case msgCallJSON:
		seq, object, method := d.uvarint(), d.name("a CallJSON names an object"), d.name("a CallJSON names a method")
		n := d.length(1)
		args := make([][]byte, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			args = append(args, bytes.Clone(d.bytes()))
		}
		if d.err != nil {
			return nil, d.err
		}
		// The method's context ends when the caller gives up (its cancel).
		cc := newCallCtx(-1)
		return nil, c.serveRequest(seq, "CallJSON of "+object+"."+method, len(m.frame), cc, func() { c.serveCallJSON(cc, seq, object, method, args) })
	default:
		if d.err != nil {
			return nil, d.err
		}
		return nil, malformed("unknown message type %d", t)
	}
	return nil, nil
}

// armLoop lets the reader goroutine's next read spin where a frame is due
// (spinread.go): a return, when exactly one call of this side waits (say
// a call that passed a callback, whose return follows the callback's), or
// the peer's next call, after serving one inline when no call waits.
// Several calls waiting start the spinner's count again; a read with
// nothing due leaves it.
func (c *Conn) armLoop(served bool) {
	if !c.rd.spinner.able() {
		return
	}
	waiting := c.waitingCalls()
	switch {
	case waiting > 1:
		c.rd.spinner.arm(false)
	case waiting == 1 || served:
		c.rd.spinner.arm(true)
	}
}
