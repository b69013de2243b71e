package refbroker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Goroutines that serve calls aside.
//
// A call the reader does not serve inline (reader.go: more is waiting to
// be read) runs on a goroutine of its own. A new goroutine starts on a
// small stack, and serving a call (reflect's call, the method's frames,
// the reply's encoding) grows it two or three times, each growth a copy
// of the stack: in a plugin serving eight callers at once that was ~15% of
// its CPU (BENCHMARKS.md). So a goroutine that has served a call waits
// for the next one a while, keeping the stack it grew:
//
//   - a call goes to a server that is waiting, if one is, or else to a new
//     goroutine: it never waits behind another call;
//   - at most maxIdleServers wait at once; a server that would be one more
//     ends instead;
//   - waiting servers end when the connection does, and otherwise after
//     one to two periods of idleServe without a call: a timer that ticks
//     while servers wait ends, at each tick, those that began to wait
//     before the tick before. So after a burst of calls the goroutines are
//     gone within milliseconds.
//
// The reader role passes the same way (reader.go): to a waiting server if
// one waits, or to a new goroutine; and the goroutine that served a call
// inline and lost the role meanwhile becomes a server in turn.
type servers struct {
	// calls hands a waiting server a call, or readingTurn. Unbuffered:
	// only a waiting server takes one.
	calls chan *incoming

	mu      sync.Mutex
	idle    int           // servers waiting
	current chan struct{} // closed to end the servers that began to wait in the current period
	older   chan struct{} // closed when the timer fires: the previous period's servers
	timer   *time.Timer
	armed   bool
	period  time.Duration // idleServe, but for tests that need servers to wait longer

	// Counts for tests: calls served aside, and goroutines started to
	// serve or read.
	aside, started atomic.Int64
}

const (
	// idleServe is the period after which waiting servers are ended.
	idleServe = 10 * time.Millisecond
	// maxIdleServers bounds the servers waiting at once (each holds the
	// stack it grew).
	maxIdleServers = 64
)

func (sv *servers) init() {
	sv.calls = make(chan *incoming)
	sv.current = make(chan struct{})
	sv.period = idleServe
}

// readingTurn, handed to a server, makes it the reader goroutine.
var readingTurn = new(incoming)

// serveAside serves in on a waiting server, or on a new goroutine.
func (c *Conn) serveAside(in *incoming) {
	c.srv.aside.Add(1)
	c.hand(in)
}

// startReader runs a reader goroutine (readLoop) on a waiting server, or
// on a new goroutine. The caller has counted it in c.workers.
func (c *Conn) startReader() { c.hand(readingTurn) }

// hand gives in to a waiting server, or to a new goroutine.
func (c *Conn) hand(in *incoming) {
	select {
	case c.srv.calls <- in:
	default:
		c.srv.started.Add(1)
		go c.run(in)
	}
}

// run is the body of the connection's goroutines that read and serve: it
// does in (a call to serve, or readingTurn), then what is handed to it
// while it waits as a server, until nothing is.
func (c *Conn) run(in *incoming) {
	for in != nil {
		switch ep := in.thenRead; {
		case in == readingTurn:
			if !c.readLoop() {
				return // the connection ended
			}
		case ep != 0: // served inline, by the reader a caller passed its role to
			c.serveCall(in)
			if c.resume(ep) && !c.readLoop() {
				return
			}
		default:
			c.serveCall(in)
		}
		in = c.nextCall()
	}
}

// nextCall waits, as a server, for a call to serve: nil if there are
// enough servers waiting, or when this one is to end.
func (c *Conn) nextCall() *incoming {
	end, ok := c.srv.wait()
	if !ok {
		return nil
	}
	var in *incoming
	select {
	case in = <-c.srv.calls:
	case <-end:
	case <-c.done:
	}
	c.srv.mu.Lock()
	c.srv.idle--
	c.srv.mu.Unlock()
	return in
}

// wait counts a server in as waiting and returns the channel whose
// closing ends it; false if maxIdleServers wait already.
func (sv *servers) wait() (<-chan struct{}, bool) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.idle >= maxIdleServers {
		return nil, false
	}
	sv.idle++
	if !sv.armed {
		sv.armed = true
		if sv.timer == nil {
			sv.timer = time.AfterFunc(sv.period, sv.tick)
		} else {
			sv.timer.Reset(sv.period)
		}
	}
	return sv.current, true
}

// tick ends the servers of the period before the one ending now, and
// starts a new period; it sets the timer again while servers wait.
func (sv *servers) tick() {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.older != nil {
		close(sv.older)
	}
	sv.older, sv.current = sv.current, make(chan struct{})
	sv.armed = sv.idle > 0
	if sv.armed {
		sv.timer.Reset(sv.period)
	}
}
