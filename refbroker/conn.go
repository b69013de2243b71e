package refbroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A connection is spread over files by concern: this one holds its
// options, lifecycle and statistics, and the state its mutex guards;
// frame.go writes frames, reader.go reads and dispatches them, call.go
// makes calls and takes their returns, serve.go serves the peer's calls,
// bootstrap.go dispenses root objects, export.go and import.go keep the
// two reference tables, release.go releases references, and typeinfo.go
// describes interface types to the peer.

// DefaultMaxMessageSize is the largest message a Conn sends or accepts
// unless Options.MaxMessageSize says otherwise.
const DefaultMaxMessageSize = 64 << 20

// Options configure a Conn. The zero value is ready to use; a limit (the
// Max… fields) of zero or less takes its default, and a CallTimeout of
// zero or less bounds nothing.
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
	// MaxConcurrentCalls bounds how many of the peer's calls this side runs
	// at once, callbacks within callbacks included, and with them its
	// Dispense, Describe and CallJSON requests. A call beyond it is
	// refused at once, unread, with an error that names this limit; nothing
	// waits, so re-entrant calls cannot deadlock on it. Default:
	// DefaultMaxConcurrentCalls (1024).
	MaxConcurrentCalls int
	// Side and PeerSide name the two sides in messages about how their
	// contracts differ ("Record.Size is int in the plugin, string in the
	// host"). Default: "here" and "there".
	Side, PeerSide string
	// MaxServedBytes bounds the bytes of the peer's calls this side runs
	// at once, and with them its Dispense, Describe and CallJSON requests:
	// the sizes of their messages (which large byte-slice arguments share
	// memory with), plus what decoding a call's arguments took beyond its
	// message (slices, maps, pointers). A peer calling a method that takes
	// its time (a Write to a slow io.Writer it was passed, say) with large
	// arguments could otherwise have MaxConcurrentCalls messages of
	// MaxMessageSize held here at once. A call that would pass it is
	// refused at once, unread (or, if its decoded arguments pass it, before
	// it runs), with an error that names this limit, as for
	// MaxConcurrentCalls; a call alone is never refused for its size.
	// Default: DefaultMaxServedBytes (256 MiB).
	MaxServedBytes int
	// MaxImports bounds how many of the peer's objects this side holds
	// proxies for at once (Stats.Imports). Each costs this side a table
	// entry and a proxy, about 250 bytes, for the few bytes of a reference
	// on the wire, so a peer could otherwise send millions in one message.
	// A message that would pass it is refused, its call failing with an
	// error that names this limit. Default: DefaultMaxImports (1,048,576).
	MaxImports int
	// MaxExports bounds how many of this side's objects the peer holds
	// references to at once (Stats.Exports): each keeps its object alive
	// here, with a table entry, for as long as the peer does not release
	// it, so a peer that keeps asking for new objects and releases none
	// would otherwise pin this side's memory without bound. A message that
	// would export one more is not sent: its call fails (or, for an answer,
	// the peer's call does) with an error that names this limit. Default:
	// DefaultMaxExports (1,048,576).
	MaxExports int
	// MaxQueuedBytes bounds the data waiting to be written while the peer
	// is slow to read: a caller beyond it waits for room, and returns when
	// its context ends. Default: DefaultMaxQueuedBytes (16 MiB).
	MaxQueuedBytes int
	// CallTimeout bounds each call this side makes that its caller cannot
	// bound: a call of a method or func that takes no context.Context (nor
	// an *http.Request, whose context it carries), and Dispense, Describe
	// and CallJSON (their …Context forms take the caller's context
	// instead). Past it, the call returns an error that wraps
	// context.DeadlineExceeded and names the method and the timeout; the
	// peer is told, as for any caller that gives up, and a return that
	// comes later is taken in and dropped. Calls of methods that take a
	// context are bounded by that context alone: a Watch(ctx, …) that runs
	// until cancelled is not cut short. Default: 0, no bound (a peer that
	// never answers holds such a call until the connection ends).
	CallTimeout time.Duration
	// NoSpin keeps this side's reads from spinning. By default, on a plain
	// socket with more than one processor, a read that expects the next
	// frame soon (a caller alone waiting for its return; the reader while
	// one call waits, or after serving a call when nothing else is going on)
	// tries the socket again for up to 100 µs before it sleeps, trading that
	// much CPU for not having to wake a thread; it stops trying after four
	// misses in a row (docs/wire.md, Reading and serving).
	NoSpin bool
	// ServeAfter, if not nil, holds the peer's calls until it is closed:
	// until then no method of this side's objects runs (Dispense, Describe
	// and releases are served). A plugin's start uses it so that its
	// methods never run before go-plugin has set up the process (its
	// stdout and stderr) for them.
	ServeAfter <-chan struct{}
	// CallAfter, if not nil, holds this side's calls until it is closed:
	// a method call (or CallJSON) waits for it before it is sent, or
	// returns when its context or the connection ends first (Dispense,
	// Describe and releases go at once). A host's start uses it when
	// nothing in the plugin can hold the calls (ServeAfter) until the
	// plugin's process is set up for them.
	CallAfter <-chan struct{}
}

// Defaults of the limits in Options.
const (
	DefaultMaxConcurrentCalls = 1024
	DefaultMaxServedBytes     = 256 << 20
	DefaultMaxQueuedBytes     = 16 << 20
	DefaultMaxImports         = 1 << 20
	DefaultMaxExports         = 1 << 20
)

// Conn is one end of a broker connection over a byte stream. Both ends are
// alike: each serves its exported objects to the other and calls the
// other's. host and plugin make one per plugin, over a socket pair or a
// go-plugin stream; a Conn works over any reliable io.ReadWriteCloser, such
// as net.Pipe.
type Conn struct {
	rwc       io.ReadWriteCloser
	serial    uint64 // numbers the connection among the process's (errhome.go)
	log       hclog.Logger
	roots     map[string]any
	maxMsg    int
	maxCalls  int
	maxServed int
	maxQueue  int
	maxImps   int
	maxExps   int
	sides     sides

	callTimeout time.Duration // Options.CallTimeout (call.go, noContext)

	// peerFeatures is what the peer announced it reads (features.go).
	peerFeatures atomic.Uint64

	// peerChunk is the size the built-in streams cut their writes to
	// since the peer refused one as too large for its MaxMessageSize; 0
	// until then (writeChunk, shrinkWrites).
	peerChunk atomic.Int64

	mu sync.Mutex
	st state // guarded by mu: reached only through locked

	wq         writeQueue // frame.go
	rd         readerRole // reader.go
	announceMu ctxMutex   // serialises type-info and layout messages (typeinfo.go, layouttable.go)
	ended      atomic.Bool

	layoutsDiffer atomic.Bool // some struct is laid out otherwise by the peer (layouttable.go)
	plans         sync.Map    // reflect.Type -> *structPlan, once layoutsDiffer
	described     sync.Map    // reflect.Type -> true: its layouts were sent
	describeMu    ctxMutex    // serialises layout messages

	// Cumulative counts, reported by Stats (the tables count the rest).
	callsMade, callsServed, callsRefused atomic.Uint64
	unknownReturns                       atomic.Uint64 // returns for no call of ours (deliver)

	building   chan struct{}  // messages being built (Conn.admit); capacity maxBuilding
	cancelling sync.Mutex     // held while cancels are taken and sent (context.go), so they go in order
	done       chan struct{}  // closed when the connection has ended
	serveGate  gate           // Options.ServeAfter
	callGate   gate           // Options.CallAfter
	workers    sync.WaitGroup // the reader while it reads, the watchdog and the flusher
	srv        servers        // goroutines serving calls aside (servers.go)

	// The flusher of releases and cancels (release.go): flushWanted says
	// something waits for it, flushRunning that a flusher goroutine runs.
	flushWanted, flushRunning atomic.Bool
}

// state is what the connection's mutex guards. Code reaches it only
// through Conn.locked, so holding the lock is a fact of the types, not a
// naming convention. Its tables' methods assume the lock, never do I/O and
// never call user code: callers collect what to do while locked and do it
// after.
type state struct {
	closed   bool
	err      error        // why the connection ended
	calls    callTable    // our calls awaiting returns (call.go)
	serving  servingTable // the peer's calls with a context (serve.go)
	exports  exportTable  // our objects the peer holds (export.go)
	imports  importTable  // the peer's objects we hold (import.go)
	releases releaseTable // releases both ways, and decode order (release.go)
	types    typeTable    // interface types described both ways (typeinfo.go)
	layouts  layoutTable  // struct layouts described both ways (layouttable.go)
	errors   errorTable   // the errors sent last, to come home as themselves (errhome.go)
}

// locked runs f with the connection's mutex held. f must not do I/O or
// call user code, and must not call locked.
func (c *Conn) locked(f func(s *state)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.st)
}

// NewConn starts a broker connection over rwc. It owns rwc from now on and
// closes it when the connection ends.
func NewConn(rwc io.ReadWriteCloser, opts Options) *Conn {
	c := &Conn{
		rwc:         rwc,
		serial:      connSerials.Add(1),
		log:         opts.Logger,
		roots:       opts.Roots,
		maxMsg:      opts.MaxMessageSize,
		maxCalls:    opts.MaxConcurrentCalls,
		maxServed:   opts.MaxServedBytes,
		maxQueue:    opts.MaxQueuedBytes,
		callTimeout: opts.CallTimeout,
		maxImps:     opts.MaxImports,
		maxExps:     opts.MaxExports,
		sides:       sides{here: opts.Side, there: opts.PeerSide},
		building:    make(chan struct{}, maxBuilding),
		announceMu:  make(ctxMutex, 1),
		describeMu:  make(ctxMutex, 1),
		done:        make(chan struct{}),
	}
	c.srv.init()
	c.serveGate.init(opts.ServeAfter)
	c.callGate.init(opts.CallAfter)
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	if c.maxMsg <= 0 {
		c.maxMsg = DefaultMaxMessageSize
	}
	if c.maxCalls <= 0 {
		c.maxCalls = DefaultMaxConcurrentCalls
	}
	if c.maxServed <= 0 {
		c.maxServed = DefaultMaxServedBytes
	}
	if c.maxQueue <= 0 {
		c.maxQueue = DefaultMaxQueuedBytes
	}
	if c.maxImps <= 0 {
		c.maxImps = DefaultMaxImports
	}
	if c.maxExps <= 0 {
		c.maxExps = DefaultMaxExports
	}
	c.st.init()
	c.initReader(rwc, !opts.NoSpin)
	c.sendHello()
	c.workers.Add(1)
	go c.run(readingTurn)
	return c
}

func (s *state) init() {
	s.calls.init()
	s.serving.init()
	s.exports.init()
	s.imports.init()
	s.releases.init()
	s.types.init()
	s.layouts.init()
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

// CloseWithError is Close, with cause as the reason the connection ended:
// Err, and the errors of calls failed by it, report cause rather than a
// close by this side. For a transport that learns first that the peer went
// away. If the connection has ended already, its reason stays.
func (c *Conn) CloseWithError(cause error) error {
	c.shutdown(cause)
	c.workers.Wait()
	return nil
}

// Done is closed when the connection has ended, by Close or because the
// peer went away.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended, wrapping ErrDisconnected; nil while it
// is up.
func (c *Conn) Err() error {
	var err error
	c.locked(func(s *state) {
		if s.closed {
			err = fmt.Errorf("%w: %v", ErrDisconnected, s.err)
		}
	})
	return err
}

// Shutdown fails every pending and later call through this connection's
// proxies with ErrDisconnected at once, as Close does, and stops serving
// the peer, but leaves the stream open until Close: for a transport that
// must finish its own goodbye on that stream's session first. host's
// Client.Close uses it before go-plugin asks the plugin to exit.
func (c *Conn) Shutdown() { c.end(errClosed, false) }

// shutdown ends the connection, closing the stream.
func (c *Conn) shutdown(cause error) { c.end(cause, true) }

// wentAway ends the connection because the stream failed.
func (c *Conn) wentAway(err error) {
	c.shutdown(fmt.Errorf("the other side went away (%w)", err))
}

// end ends the connection once, recording cause, and fails everything that
// waits on it; closeStream closes the stream too (also after an earlier
// Shutdown).
func (c *Conn) end(cause error, closeStream bool) {
	if closeStream {
		c.stopReaders()
	}
	var (
		first    bool
		pending  []*pendingCall
		serving  []*callCtx
		leftover map[uint64]*export
	)
	c.locked(func(s *state) {
		if s.closed {
			return
		}
		first = true
		s.closed = true
		s.err = cause
		pending = s.calls.takeAll()
		serving = s.serving.takeAll()
		leftover = s.exports.clear()
		s.imports.clear()
		s.releases.clear()
	})
	if !first {
		if closeStream {
			_ = c.rwc.Close()
		}
		return
	}
	c.ended.Store(true)
	close(c.done)
	if closeStream {
		_ = c.rwc.Close()
	}
	for _, p := range pending {
		p.connEnded()
	}
	c.interruptCaller() // a caller reading for its return has it now
	for _, cc := range serving {
		cc.end(context.Canceled, fmt.Errorf("%w: %v", ErrDisconnected, cause))
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

// disconnected is the error of a call that cannot be made or finished
// because the connection has ended.
func (c *Conn) disconnected(method string) error {
	var cause error
	c.locked(func(s *state) { cause = s.err })
	return &callError{method: method, sentinel: ErrDisconnected, cause: cause}
}

// Stats counts a connection's references and calls.
type Stats struct {
	Exports int // live: objects of this side that the peer holds references to
	Imports int // live: objects of the peer that this side holds proxies for
	Pending int // live: calls of this side awaiting their return
	Serving int // live: calls (and requests) of the peer running here (Options.MaxConcurrentCalls)
	// ServedBytes is live: what Serving's calls hold, their messages and
	// decoded arguments (Options.MaxServedBytes).
	ServedBytes int

	CallsMade       uint64 // calls this side sent
	CallsServed     uint64 // calls of the peer this side ran
	CallsRefused    uint64 // calls (and Dispense, Describe, CallJSON requests) of the peer refused for Options.MaxConcurrentCalls or MaxServedBytes
	ExportsCreated  uint64 // objects this side exported
	ExportsDropped  uint64 // exports dropped after the peer released every send
	ImportsCreated  uint64 // imports of the peer's objects this side began
	ImportsReleased uint64 // imports released (Release or garbage collection); Imports = created - released
}

// Stats returns the connection's current counts.
func (c *Conn) Stats() Stats {
	var st Stats
	c.locked(func(s *state) {
		st.Exports, st.ExportsCreated, st.ExportsDropped = len(s.exports.byID), s.exports.created, s.exports.dropped
		st.Imports, st.ImportsCreated, st.ImportsReleased = len(s.imports.byID), s.imports.created, s.imports.released
		st.Pending = len(s.calls.bySeq)
		st.Serving, st.ServedBytes = len(s.serving.bySeq), s.serving.bytes
	})
	st.CallsMade, st.CallsServed, st.CallsRefused = c.callsMade.Load(), c.callsServed.Load(), c.callsRefused.Load()
	return st
}

// gate holds calls until its channel is closed (Options.ServeAfter on
// the serving side, Options.CallAfter on the calling side); a nil channel
// holds nothing.
type gate struct {
	ch     <-chan struct{}
	opened atomic.Bool // ch was seen closed, or is nil: wait need not select
}

func (g *gate) init(ch <-chan struct{}) {
	g.ch = ch
	g.opened.Store(ch == nil)
}

// wait returns true once the gate is open, false if done is closed, or
// ctx (which may be nil) ends, first.
func (g *gate) wait(ctx context.Context, done <-chan struct{}) bool {
	if g.opened.Load() {
		return true
	}
	if awaitClosed(g.ch, ctx, done) != nil {
		return false
	}
	g.opened.Store(true)
	return true
}
