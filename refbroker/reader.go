package refbroker

import "time"

// The reader role.
//
// One goroutine at a time reads the stream. When a call arrives and
// nothing else is waiting to be read, the reader serves the call itself
// ("inline") instead of starting a goroutine for it: handing work to
// another goroutine wakes a second thread, and on a small machine that
// wake-up, not the broker's code, is most of a call's cost
// (BENCHMARKS.md). While the reader serves, nobody reads, so the role
// passes to a new goroutine as soon as the stream must be read:
//
//   - a call of ours starts waiting for its return (needReader, from
//     roundTrip), typically the inline call calling back;
//   - the inline call has run through a tick of the watchdog (1–2 ms): it
//     may be blocked, waiting for its cancellation, or simply long, and
//     other messages must not wait for it.
//
// A return awaited since before the reader went inline (another
// goroutine's call) is read when the inline call ends or at the watchdog's
// tick: the price of the shortcut, bounded by the watchdog.
//
// The goroutine that served inline then ends when its call returns; if the
// role did not pass, it goes back to reading. Each inline call has an
// episode number, so a goroutine whose role passed cannot take it back.
//
// The reader counts in workers (Close waits for it) only while it reads,
// not while it runs user code: Close waits for the connection's own
// goroutines, never for methods it runs.

// watchTick is the watchdog's period: an inline call that is seen running
// at two ticks in a row (so after 1–2 ticks) loses the reader role.
const watchTick = time.Millisecond

// watchIdleTicks is how many ticks without an inline call the watchdog
// waits before it stops; the next inline call starts it again.
const watchIdleTicks = 50

// readLoop reads and dispatches frames until the connection ends, or until
// the reader role passes on while this goroutine serves a call inline.
func (c *Conn) readLoop() {
	for {
		in, ok := c.readOne()
		if !ok {
			c.workers.Done()
			return
		}
		if in == nil {
			continue
		}
		if c.rd.br.Buffered() > 0 { // more is waiting: serve this call aside
			go c.serveCall(in)
			continue
		}
		ep := c.goInline()
		c.serveCall(in)
		if !c.resume(ep) {
			return
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
	if !c.rd.watching && !c.rd.stopped {
		c.rd.watching = true
		c.workers.Add(1)
		go c.watch()
	}
	c.workers.Done()
	return ep
}

// resume ends inline episode ep. It reports whether the goroutine is
// still the reader (then it counts as a worker again); false if the role
// passed on meanwhile or the connection's stream is closed.
func (c *Conn) resume(ep uint64) bool {
	c.rd.Lock()
	defer c.rd.Unlock()
	if c.rd.inline.Load() != ep {
		return false
	}
	c.rd.inline.Store(0)
	if c.rd.stopped {
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
// progress, if any, to a new goroutine. c.rd is locked.
func (c *Conn) handOffLocked() {
	if c.rd.inline.Load() == 0 || c.rd.stopped {
		return
	}
	c.rd.inline.Store(0)
	c.workers.Add(1)
	go c.readLoop()
}

// stopReaders marks the stream closed for the reader role: no goroutine
// becomes the reader or the watchdog from now on, so Close's wait for the
// workers ends.
func (c *Conn) stopReaders() {
	c.rd.Lock()
	c.rd.stopped = true
	c.rd.Unlock()
}

// watch is the watchdog: every tick, an inline episode already running at
// the previous tick loses the reader role. It stops after watchIdleTicks
// ticks without inline calls, or when the connection ends.
func (c *Conn) watch() {
	defer c.workers.Done()
	t := time.NewTimer(watchTick)
	defer t.Stop()
	var lastInline, lastEpisodes uint64
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
		cur := c.rd.inline.Load()
		if cur != 0 && cur == lastInline {
			c.handOffLocked()
		}
		if c.rd.episodes == lastEpisodes {
			idle++
		} else {
			idle = 0
		}
		lastInline, lastEpisodes = cur, c.rd.episodes
		if idle >= watchIdleTicks || c.rd.stopped {
			c.rd.watching = false
			c.rd.Unlock()
			return
		}
		c.rd.Unlock()
		t.Reset(watchTick)
	}
}
