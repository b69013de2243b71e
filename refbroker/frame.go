package refbroker

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// Frames: every message is one frame, `uvarint length | body`. This file
// holds the buffers frames are built and read in, and the write queue
// that sends them whole and in order.

// frameRoom is the space kept at the front of every encoder buffer for the
// frame's length prefix, so a frame is written with one Write.
const frameRoom = binary.MaxVarintLen64

// maxPooled is the largest buffer kept for reuse. Reusing large buffers
// matters: fresh memory costs page faults and garbage collections.
const maxPooled = 8 << 20

var encoderPool = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 512)} }}

// newEncoder starts an outgoing message; send or discard ends it.
func (c *Conn) newEncoder() *encoder {
	e := encoderPool.Get().(*encoder)
	e.buf = e.buf[:frameRoom]
	e.refs = c
	e.limit = frameRoom + c.maxMsg
	e.depth = 0
	e.sent = e.sent[:0]
	return e
}

func freeEncoder(e *encoder) {
	e.refs = nil
	clear(e.home)
	e.home = e.home[:0]
	if cap(e.buf) <= maxPooled {
		encoderPool.Put(e)
	}
}

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

// inbound is one message read from the stream, being decoded. Whoever
// holds it calls Conn.finish when decoding is over, which gives the frame
// back and ends the message's place in the decode order (release.go).
type inbound struct {
	d      decoder
	frame  []byte // from framePool if pooled
	pooled bool
	no     uint64 // its number in the decode order; 0 if not counted
}

// errReadAfterFinish guards against reading a message whose buffer went
// back to the pool (a bug, never peer input).
var errReadAfterFinish = fmt.Errorf("refbroker: internal error: message read after it was finished")

// newInbound wraps a frame for decoding by this connection.
func (c *Conn) newInbound(frame []byte, pooled bool) *inbound {
	return &inbound{d: decoder{buf: frame, refs: c}, frame: frame, pooled: pooled}
}

// finish ends decoding of m; it may be called more than once. Nothing
// decoded aliases the frame: strings and byte slices are copied out.
func (c *Conn) finish(m *inbound) {
	if m.no != 0 {
		c.decoded(m.no)
		m.no = 0
	}
	if m.frame != nil {
		if m.pooled {
			putFrame(m.frame)
		}
		m.frame = nil
		m.d.buf, m.d.off = nil, 0
		m.d.fail(errReadAfterFinish)
	}
}

// discard drops a message that will not be sent, taking back the
// references it exported.
func (c *Conn) discard(e *encoder) {
	c.unsend(e.sent)
	freeEncoder(e)
}

// send writes e's message as one frame and frees e. A message over the
// size limit is not sent, and its references are taken back.
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
		c.wentAway(err)
		return ErrDisconnected
	}
	return nil
}

// writeQueue combines frames: while one goroutine writes, others append
// their frames to pending, and the writer sends them together in its next
// Write. Under load that turns many small stream writes (each a system
// call; on a yamux stream, also a trip through its send loop) into a few.
type writeQueue struct {
	sync.Mutex
	writing bool   // a goroutine is writing to the stream
	pending []byte // frames to write next, in order
	spare   []byte // the last written buffer, reused
	err     error  // the write error that ended the connection
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
					c.wentAway(err)
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
