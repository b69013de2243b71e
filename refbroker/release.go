package refbroker

import "math"

// Releases, both ways. When a Ref of ours is released or collected, its
// import is dropped and a release naming every send received is queued; a
// flusher sends queued releases in batches, so a cleanup never blocks on
// I/O. When the peer releases, the export's count drops by the sends named
// and the export goes at zero.
//
// Decode order: a message may carry a reference home (an export of ours)
// and be decoded on another goroutine after the reader has moved on; a
// release of that export read afterwards must not drop it first. So each
// call and return gets a number while it is decoded, and a release waits
// until every message read before it has been decoded.

// release is one entry of a release message.
type release struct{ id, count uint64 }

// heldRelease is a release waiting for messages read before it (up to
// message number after) to be decoded.
type heldRelease struct {
	after uint64
	items []release
}

// releaseTable holds releases on their way out, and the peer's releases
// held for the decode order. Its methods assume the connection's mutex
// (see state).
type releaseTable struct {
	out      []release           // ours, waiting for the flusher
	msgNo    uint64              // the last number given to an incoming call or return
	inDecode map[uint64]struct{} // numbers of messages being decoded
	held     []heldRelease       // the peer's releases waiting for those
}

func (t *releaseTable) init() { t.inDecode = make(map[uint64]struct{}) }

func (t *releaseTable) queue(r release) { t.out = append(t.out, r) }

// takeOut returns the releases waiting to be sent and empties the queue.
func (t *releaseTable) takeOut() []release {
	out := t.out
	t.out = nil
	return out
}

// begin numbers a message whose decoding starts.
func (t *releaseTable) begin() uint64 {
	t.msgNo++
	t.inDecode[t.msgNo] = struct{}{}
	return t.msgNo
}

// end ends decoding of message n and returns the held releases that no
// longer wait for anything.
func (t *releaseTable) end(n uint64) []release {
	delete(t.inDecode, n)
	if len(t.held) == 0 {
		return nil
	}
	oldest := uint64(math.MaxUint64)
	for m := range t.inDecode {
		oldest = min(oldest, m)
	}
	var ready []release
	i := 0
	for ; i < len(t.held) && t.held[i].after < oldest; i++ {
		ready = append(ready, t.held[i].items...)
	}
	t.held = t.held[i:]
	return ready
}

// hold keeps the peer's release items back if a message read before them
// is still being decoded (or an earlier release waits), and reports
// whether it did.
func (t *releaseTable) hold(items []release) bool {
	if len(t.inDecode) == 0 && len(t.held) == 0 {
		return false
	}
	t.held = append(t.held, heldRelease{after: t.msgNo, items: items})
	return true
}

func (t *releaseTable) clear() { t.out, t.held = nil, nil }

// applyReleases drops the sends the items name from the export table and
// returns the IDs the peer did not hold.
func (s *state) applyReleases(items []release) (unknown []uint64) {
	for _, r := range items {
		if !s.exports.dropSends(r.id, r.count) {
			unknown = append(unknown, r.id)
		}
	}
	return unknown
}

// flushControl sends, in the background, the messages that must not make their
// sender wait for room in the write queue: queued releases, in batches
// (cleanups only queue, so they never block on I/O), and the cancels of
// calls whose callers gave up (context.go). At most one goroutine a
// connection does this, however many wait to be sent while the peer does
// not read; it starts when something is queued (wakeFlusher) and ends when
// nothing is left, so an idle connection (a host holding many plugins)
// keeps no goroutine for it.
func (c *Conn) flushControl() {
	defer c.workers.Done()
	for {
		c.flushWanted.Store(false)
		select {
		case <-c.done:
			c.flushRunning.Store(false)
			return
		default:
		}
		c.sendReleases()
		c.sendCancels()
		if c.flushWanted.Load() {
			continue
		}
		// Stop, unless something was queued after the look above and its
		// wakeFlusher saw this goroutine still running (then it is this
		// goroutine's to send: it takes the role back). Either the queuer
		// sees flushRunning false and starts a flusher, or this goroutine
		// sees flushWanted.
		c.flushRunning.Store(false)
		if !c.flushWanted.Load() || c.flushRunning.Swap(true) {
			return
		}
	}
}

// wakeFlusher tells the flusher there is something to send, starting it if
// none runs.
func (c *Conn) wakeFlusher() {
	c.flushWanted.Store(true)
	if c.flushRunning.Swap(true) {
		return // the running flusher looks again before it stops
	}
	// Close waits for the workers: none starts once the stream is closed
	// (stopReaders), when there is nothing left to send anyway.
	c.rd.Lock()
	if c.rd.stopped {
		c.rd.Unlock()
		c.flushRunning.Store(false)
		return
	}
	c.workers.Add(1)
	c.rd.Unlock()
	go runFlusher(c)
}

// runFlusher is (*Conn).flushControl, set in init: naming the method in
// wakeFlusher would make errCodec's initializer (which decodes, and may
// queue a release) refer to itself through sendCancels.
var runFlusher func(*Conn)

func init() { runFlusher = (*Conn).flushControl }

// sendReleases sends the queued releases in one message.
func (c *Conn) sendReleases() {
	var batch []release
	c.locked(func(s *state) { batch = s.releases.takeOut() })
	if len(batch) == 0 {
		return
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

// beginDecode gives m its place in the decode order; finish ends it.
func (c *Conn) beginDecode(m *inbound) {
	c.locked(func(s *state) { m.no = s.releases.begin() })
}

// decoded ends decoding of message n and applies the releases that were
// waiting for it.
func (c *Conn) decoded(n uint64) {
	var unknown []uint64
	c.locked(func(s *state) {
		ready := s.releases.end(n)
		if len(ready) > 0 && !s.closed {
			unknown = s.applyReleases(ready)
		}
	})
	c.warnUnknown(unknown)
}

// applyReleases handles the peer's release message: each item names an
// export and how many of its sends the peer no longer holds.
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
	if err := c.learnFeatures(d); err != nil {
		return err
	}
	var unknown []uint64
	c.locked(func(s *state) {
		if !s.closed && !s.releases.hold(items) {
			unknown = s.applyReleases(items)
		}
	})
	c.warnUnknown(unknown)
	return nil
}

// warnUnknown logs the peer's releases of references it did not hold:
// their number and the first few (a release message can name millions).
func (c *Conn) warnUnknown(ids []uint64) {
	if len(ids) > 0 {
		c.log.Warn("refbroker: the peer released references it did not hold", "count", len(ids), "ids", ids[:min(len(ids), maxLoggedIDs)])
	}
}

// maxLoggedIDs is how many reference numbers a warning lists.
const maxLoggedIDs = 10

// unsend takes back sends of references in a message that never reached
// the peer, or that it rejected unread.
func (c *Conn) unsend(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	c.locked(func(s *state) {
		for _, id := range ids {
			s.exports.dropSends(id, 1)
		}
	})
}
