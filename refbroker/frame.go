package refbroker

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
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
	if e.admitted != nil {
		<-e.admitted.building
		e.admitted = nil
	}
	e.refs = nil
	e.ctx = nil
	clear(e.home)
	e.home = e.home[:0]
	clear(e.segs)
	e.segs, e.extra, e.inline = e.segs[:0], 0, 0
	if cap(e.buf) <= maxPooled {
		encoderPool.Put(e)
	}
}

// framePool recycles the buffers incoming messages are read into, once
// they are decoded. Decoding copies everything it keeps.
var framePool bufPool

// bufPool is a sync.Pool of byte slices that keeps the *[]byte boxes they
// travel in: boxing a slice afresh at every put would cost an allocation
// per put.
type bufPool struct{ bufs, boxes sync.Pool }

// get returns a pooled slice, or nil if there is none.
func (p *bufPool) get() []byte {
	box, _ := p.bufs.Get().(*[]byte)
	if box == nil {
		return nil
	}
	b := *box
	*box = nil
	p.boxes.Put(box)
	return b
}

// put keeps b for a later get.
func (p *bufPool) put(b []byte) {
	box, _ := p.boxes.Get().(*[]byte)
	if box == nil {
		box = new([]byte)
	}
	*box = b
	p.bufs.Put(box)
}

// getFrame returns a buffer for a frame of n bytes, pooled or new.
func getFrame(n int) []byte {
	b, _ := pooledOrNewFrame(n)
	return b
}

// takeFrame returns a buffer for a frame of n bytes, and whether it
// begins its allocation and carries no finalizer, so that it may be armed
// (frameRecycler): one the recycler took back, or a new one.
func takeFrame(n int) ([]byte, bool) {
	if n >= bigBytes {
		if b := recycler.take(n); b != nil {
			return b, true
		}
	}
	return pooledOrNewFrame(n)
}

// pooledOrNewFrame returns a buffer of n bytes from framePool, or a new
// one and true.
func pooledOrNewFrame(n int) ([]byte, bool) {
	if b := framePool.get(); b != nil && cap(b) >= n {
		return b[:n], false
	}
	if n >= bigBytes {
		// Room for a large slice shared with the receiver to come back
		// (recycle) as a frame as large as this one (decoder.alias).
		return make([]byte, n, n+frameSlack), true
	}
	return make([]byte, n, max(n, 512)), true
}

// giveFrame gives back a buffer takeFrame returned, no longer used.
func giveFrame(b []byte, base bool) {
	if base && cap(b) >= bigBytes && recycler.put(b) {
		return
	}
	putFrame(b[:0])
}

// frameSlack is the room a large frame has beyond its message.
const frameSlack = 4 << 10

func putFrame(b []byte) {
	if cap(b) <= maxPooled {
		framePool.put(b)
	}
}

// inbound is one message read from the stream, being decoded. Whoever
// holds it calls Conn.finish when decoding is over, which gives the frame
// back and ends the message's place in the decode order (release.go).
type inbound struct {
	d      decoder
	frame  []byte // from framePool if pooled
	pooled bool
	// base says frame begins its allocation and carries no finalizer
	// (takeFrame): shared with the receiver, it is armed (frameRecycler).
	base bool
	no   uint64 // its number in the decode order; 0 if not counted
	// placed says the frame ends before the bytes its method filled,
	// which the caller's buffer holds already (frameReader.placed).
	placed bool
}

// errReadAfterFinish guards against reading a message whose buffer went
// back to the pool (a bug, never peer input).
var errReadAfterFinish = fmt.Errorf("refbroker: internal error: message read after it was finished")

// newInbound wraps a frame for decoding by this connection.
func (c *Conn) newInbound(frame []byte, pooled, base bool) *inbound {
	return &inbound{d: decoder{buf: frame, refs: c, frameCap: cap(frame)}, frame: frame, pooled: pooled, base: base}
}

// parts are e's frame from buf[start:], its segments in their places.
func (e *encoder) parts(start int) net.Buffers {
	parts := make(net.Buffers, 0, 2*len(e.segs)+1)
	at := start
	for _, s := range e.segs {
		parts = append(parts, e.buf[at:s.at], s.data)
		at = s.at
	}
	return append(parts, e.buf[at:])
}

// finish ends decoding of m; it may be called more than once. Nothing
// decoded aliases the frame but large byte slices (decoder.alias);
// a frame they share is left to the garbage collector, or armed to come
// back once they are dropped (frameRecycler).
func (c *Conn) finish(m *inbound) {
	if m.no != 0 {
		c.decoded(m.no)
		m.no = 0
	}
	if m.frame != nil {
		switch {
		case m.d.aliased && m.base:
			recycler.arm(m.frame)
		case m.pooled && !m.d.aliased:
			giveFrame(m.frame, m.base)
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

// send writes e's message as one frame and frees e, waiting for room in
// the write queue as long as it takes (or until the connection ends). A
// message over the size limit is not sent, and its references are taken
// back.
func (c *Conn) send(e *encoder) error {
	_, err := c.sendCtx(e, nil, waitForRoom)
	return err
}

// How a frame that finds the write queue full is handled.
const (
	waitForRoom = iota // wait until there is room, ctx ends or the connection does
	endIfFull          // never wait; if there is no room, end the connection: a peer that does not read us is flooding us
)

// sendCtx is send for a caller with a context: if ctx ends first, it
// returns ctx's error. queued reports whether the frame was committed to
// the stream (then it is sent whole, even if its caller gave up, and its
// references stay counted); if not, its references are taken back.
func (c *Conn) sendCtx(e *encoder, ctx context.Context, full int) (queued bool, err error) {
	defer freeEncoder(e)
	n := e.size() - frameRoom
	if n > c.maxMsg {
		c.unsend(e.sent)
		return false, &tooLarge{fmt.Sprintf("message of %d bytes exceeds the limit of %d (Options.MaxMessageSize)", n, c.maxMsg)}
	}
	var hdr [binary.MaxVarintLen64]byte
	hn := binary.PutUvarint(hdr[:], uint64(n))
	start := frameRoom - hn
	copy(e.buf[start:], hdr[:hn])
	if len(e.segs) == 0 {
		queued, err = c.write(e.buf[start:], ctx, full)
	} else {
		queued, err = c.writeParts(e.parts(start), ctx, full)
	}
	switch {
	case err == nil:
		return true, nil
	case ctx != nil && err == ctx.Err():
		if !queued {
			c.unsend(e.sent)
		}
		return queued, err
	case err == errQueueFull:
		c.unsend(e.sent)
		c.shutdown(fmt.Errorf("the other side sends calls this side must refuse, and does not read the answers (over %d bytes wait for it; Options.MaxQueuedBytes)", c.maxQueue))
		return false, ErrDisconnected
	case err == ErrDisconnected:
		c.unsend(e.sent)
		return false, ErrDisconnected
	default:
		c.wentAway(err)
		return queued, ErrDisconnected
	}
}
