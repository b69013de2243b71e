package refbroker

import (
	"context"
	"time"
)

// Callers reading their own returns.
//
// The reader role's hand-off (reader.go) costs a caller too: the reader
// goroutine reads its return and wakes it. So on a side without roots,
// once the reader goroutine has delivered a return and no call waits, it
// leaves the role free (yield) when the peer is not expected to call:
// it holds none of this side's objects, or the last plainToYield returns
// came with no call of the peer's between them (a host whose callback or
// API the plugin holds, making plain calls). A caller that finds the role
// free takes it: it reads until its own return has come, so a call has no
// hand-off on either side. It gives the role back when it has its return:
// free again if the side is still quiet, or else to a new reader
// goroutine.
//
// A frame that is not its return is dispatched as the reader goroutine
// would. A call of the peer's is not served by the caller: it may be
// unrelated to the caller's call and wait for what the caller's code does
// once that returns. If nothing else is buffered, the caller passes the
// role, with the call, to a reader goroutine that serves it inline (the
// episode the watchdog watches) and then reads on, as if the role had
// never been free: a call that brings callbacks costs one hand-off more
// than with a reader goroutine all along, once, and then none while calls
// keep bringing them (the role is not left free). Otherwise the call is
// served aside, and the caller reads on.
//
// While the role is free nobody reads: a reader goroutine takes it back
// after idleRead, or idleReadServing if the peer holds this side's
// objects (a late release, a call of the peer's, or the connection's end
// is then read), or the next caller does. A caller whose context ends
// while it reads is interrupted by a read deadline in the past (the
// stream must have read deadlines; otherwise callers never read), leaves
// the frame it was reading half read for the next reader (frameReader),
// and passes the role to a new reader goroutine.

// idleRead is how long the role may stay free before a reader goroutine
// takes it back.
//
// Its timer is not set at every call: setting a timer earlier than the
// one a sleeping thread waits for wakes that thread (the runtime's
// netpoller recomputes its sleep), which on a small machine cost a fifth
// of a plain call. It is set when the role is left free and not already
// set; when it fires with the role free for less than idleRead (it was
// taken and left free again meanwhile), it is set again for the rest; when
// it fires with the role held, it is not set until the role is left free.
// So a steady stream of calls sets it about once per idleRead, and 10 ms
// (not 1) keeps even that out of the measurements (BENCHMARKS.md).
const idleRead = 10 * time.Millisecond

// idleReadServing replaces idleRead while the peer holds references to
// this side's objects: it may call them at any time (a callback from a
// goroutine of its own, say), and such a call, arriving while the role is
// free, waits for the timer or the next caller. A millisecond is the
// watchdog's bound on an inline call too (watchTick).
const idleReadServing = time.Millisecond

// plainToYield is how many returns in a row, with no call read between
// them, make a side the peer may call leave the role free. Where the
// peer calls back during calls, a free role costs each call a hand-off
// more (passRoleWith): the reader goroutine then keeps the role.
const plainToYield = 2

// readDeadliner is what a stream needs for callers to read from it.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

func (c *Conn) setReadDeadline(t time.Time) {
	if rd, ok := c.rwc.(readDeadliner); ok {
		_ = rd.SetReadDeadline(t)
	}
}

// yield leaves the reader role free, if the side is quiet
// (leaveFreeIfQuiet): the reader goroutine then ends. It reports whether
// it did.
func (c *Conn) yield() bool {
	c.rd.Lock()
	defer c.rd.Unlock()
	if c.rd.stopped || c.rd.holder != roleLoop || !c.leaveFreeIfQuiet() {
		return false
	}
	c.workers.Done()
	return true
}

// leaveFreeIfQuiet leaves the reader role free, and reports whether it
// did, if no call waits for its return and the peer is not expected to
// call this side soon: it holds none of this side's objects, or the last
// plainToYield returns came with no call between them. The idle timer
// then looks at the role after idleRead, or idleReadServing if the peer
// holds this side's objects. c.rd is locked.
func (c *Conn) leaveFreeIfQuiet() bool {
	if !c.rd.callers || c.rd.fr.br.Buffered() > 0 {
		return false
	}
	waiting, exports := 0, 0
	c.locked(func(s *state) { waiting, exports = len(s.calls.bySeq), len(s.exports.byID) })
	if waiting > 0 || exports > 0 && c.rd.plain < plainToYield {
		return false
	}
	now := time.Now()
	c.rd.holder = roleFree
	c.rd.freedAt = now
	c.rd.freeFor = c.rd.idleAfter
	if exports > 0 {
		c.rd.freeFor = min(c.rd.freeFor, c.rd.idleServing)
	}
	if due := now.Add(c.rd.freeFor); !c.rd.armed || c.rd.dueAt.After(due) {
		c.rd.armed = true
		c.rd.sets++
		c.rd.dueAt = due
		c.rd.idle.Reset(c.rd.freeFor)
	}
	return true
}

// idleTakeBack starts a reader goroutine if the role has been free for
// freeFor, or sets the timer again for the rest if it has been free for
// less.
func (c *Conn) idleTakeBack() {
	c.rd.Lock()
	if c.rd.holder != roleFree || c.rd.stopped {
		c.rd.armed = false
		c.rd.Unlock()
		return
	}
	if rest := c.rd.freeFor - time.Since(c.rd.freedAt); rest > 0 {
		c.rd.dueAt = time.Now().Add(rest)
		c.rd.idle.Reset(rest)
		c.rd.Unlock()
		return
	}
	c.rd.armed = false
	c.rd.holder = roleLoop
	c.workers.Add(1)
	c.rd.Unlock()
	c.run(readingTurn)
}

// takeRole makes the calling caller the reader, if the role is free.
func (c *Conn) takeRole() bool {
	if !c.rd.callers {
		return false
	}
	c.rd.Lock()
	defer c.rd.Unlock()
	if c.rd.holder != roleFree || c.rd.stopped {
		return false
	}
	c.rd.holder = roleCaller // the idle timer, if set, finds it held
	return true
}

// borrowRole makes the calling caller the reader while the reader
// goroutine serves a call inline (the role is held, but nobody reads),
// and reports whether it did: typically the inline call itself, calling
// out (a callback, a Write to the peer's io.Writer). Otherwise the role
// would pass to another goroutine (needReader), which would then hand the
// return to the caller: two thread wake-ups a call, one of them on the
// call's path. The borrower gives the role back when it has its return
// (giveBackRole).
func (c *Conn) borrowRole() bool {
	if !c.rd.deadline || c.rd.inline.Load() == 0 {
		return false
	}
	c.rd.Lock()
	defer c.rd.Unlock()
	if c.rd.stopped || c.rd.holder != roleLoop || c.rd.inline.Load() == 0 {
		return false
	}
	c.rd.holder = roleCaller
	c.rd.lends++
	return true
}

// giveBackRole ends a caller's turn as the reader: back to the inline
// call it borrowed the role from, if that still runs and nothing else is
// due (its goroutine reads again when the call ends, or the watchdog
// passes the role on); else left free if the side is quiet, or passed to
// a reader goroutine.
func (c *Conn) giveBackRole() {
	c.rd.Lock()
	defer c.rd.Unlock()
	switch {
	case c.rd.stopped:
		c.rd.holder = roleFree
	case c.rd.inline.Load() != 0 && c.rd.fr.br.Buffered() == 0 && c.waitingCalls() == 0:
		c.rd.holder = roleLoop
		c.watchLocked() // it may have stopped while the role was borrowed
	case c.leaveFreeIfQuiet():
	default:
		c.rd.inline.Store(0) // a borrowed role passes on from the inline call
		c.rd.holder = roleLoop
		c.workers.Add(1)
		c.startReader()
	}
}

// interruptCaller makes a caller that reads return from its read (the
// connection ended while it waits there).
func (c *Conn) interruptCaller() {
	c.rd.Lock()
	if c.rd.holder == roleCaller {
		c.setReadDeadline(time.Unix(1, 0))
	}
	c.rd.Unlock()
}

// readFor reads frames, as the reader, until ch holds the caller's reply,
// or until ctxDone closes: then it passes the role on and returns false.
// want, if not nil, is where the bytes its method fills go (placement).
func (c *Conn) readFor(ch chan reply, ctx context.Context, want *placement) (reply, bool) {
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	var intr *interrupt
	if canEnd(ctx) {
		intr = newInterrupt(ctx, c.setReadDeadline)
	}
	disarm := func() {
		if intr.disarm() {
			c.setReadDeadline(time.Time{})
		}
	}
	for {
		select {
		case r := <-ch:
			disarm()
			c.giveBackRole()
			return r, true
		case <-ctxDone:
			disarm()
			c.giveBackRole()
			return reply{}, false
		default:
		}
		if c.rd.spinner.able() {
			c.rd.spinner.arm(c.waitingCalls() == 1)
		}
		c.rd.fr.want = want
		in, _, st := c.readOne()
		c.rd.fr.want = nil
		c.rd.spinner.disarm()
		switch st {
		case readEnded:
			// Every waiting call has been told (Conn.end): ch has it.
			disarm()
			return <-ch, true
		case readTimeout:
			c.setReadDeadline(time.Time{}) // then see why, above
			continue
		}
		if in == nil {
			continue
		}
		if c.rd.fr.br.Buffered() == 0 && c.passRoleWith(in) {
			// A reader goroutine serves the call inline, as readLoop would,
			// and reads this caller's return.
			disarm()
			select {
			case r := <-ch:
				return r, true
			case <-ctxDone:
				return reply{}, false
			}
		}
		c.serveAside(in)
	}
}

// passRoleWith passes the reader role from the calling caller, which took
// it free, to a reader goroutine that first serves in inline (an inline
// episode, as if readLoop had read it), and reports whether it did.
//
// A call the caller reads is the peer calling one of this side's
// exports: usually a callback made while the peer serves the caller's own
// call, often the first of many. The caller does not serve it: it may
// block on what the caller's own code does after the call returns. Served
// aside, each would wake a server; served inline by a reader goroutine,
// the rest are served as they would be had the role never been free, and
// the caller's return is handed to it as then. A caller that borrowed the
// role from an inline call serves aside instead (the episode is that
// call's).
func (c *Conn) passRoleWith(in *incoming) bool {
	c.rd.Lock()
	if c.rd.stopped || c.rd.holder != roleCaller || c.rd.inline.Load() != 0 {
		c.rd.Unlock()
		return false
	}
	c.rd.holder = roleLoop
	c.rd.passes++
	c.rd.episodes++
	in.thenRead = c.rd.episodes
	c.rd.inline.Store(in.thenRead)
	c.watchLocked()
	c.rd.Unlock()
	c.hand(in)
	return true
}

// waitingCalls counts this side's calls waiting for their returns.
func (c *Conn) waitingCalls() int {
	n := 0
	c.locked(func(s *state) { n = len(s.calls.bySeq) })
	return n
}
