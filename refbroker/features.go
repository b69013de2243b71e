package refbroker

// What each side can read, announced once (docs/wire.md, Features).
//
// The two ends of a connection may be built from different versions of
// refplug: a plugin binary is built when its author builds it, its host
// when its own is. A change to what a message may carry must then not
// reach a peer that cannot read it. So each side's first message is a
// hello: a release message naming no references (which every version of
// refbroker has accepted, ignoring what follows its items) followed by a
// set of feature bits. A side sends what a feature adds only once the
// peer has announced the feature; a peer that announces nothing is of a
// refplug from before the hello (2026-11-28) and gets what it could read.
// The hello is the first frame on the stream, so a peer's hello is read
// before any call of the peer's, and before the returns it reads.
//
// A peer can only claim to read more; what it claims changes what this
// side writes to it, never what this side accepts from it.

// Features.
const (
	// featRestoreRefs: the side reads restored out-parameters whose
	// pointees hold references (outparams.go). A side without it gets
	// restored only the out-parameters of plain data, as before.
	featRestoreRefs uint64 = 1 << iota
	// featBufferLength: the side reads a call of io.Reader's Read or
	// io.ReaderAt's ReadAt whose buffer is sent as its length alone
	// (ctxBufferLength; plan.go, sendsLength). A side without it gets the
	// buffer's bytes, as before.
	featBufferLength
	// featPing: the side answers a ping message (msgPing), which Ping
	// sends instead of a Describe, whose answer grows with the roots.
	featPing
)

// ourFeatures is what this version of refbroker reads.
const ourFeatures = featRestoreRefs | featBufferLength | featPing

// sendHello queues the hello, before any other frame: never waiting (the
// peer may not read yet: both sides of a net.Pipe start in one goroutine
// in tests), and written in order with what follows it.
func (c *Conn) sendHello() {
	e := c.newEncoder()
	e.byte1(msgRelease)
	e.uvarint(0) // no releases
	e.uvarint(ourFeatures)
	_, _ = c.sendCtx(e, nil, endIfFull)
}

// learnFeatures reads what follows a release message's items: the
// features of the peer's hello, if any (a peer of an older refplug sends
// nothing there). Bits this side does not know are ignored, as are any
// bytes after them (room for later additions).
func (c *Conn) learnFeatures(d *decoder) error {
	if d.remaining() == 0 {
		return nil
	}
	f := d.uvarint()
	if d.err != nil {
		return d.err
	}
	c.peerFeatures.Or(f & ourFeatures)
	return nil
}

// peerReads reports whether the peer announced feature f.
func (c *Conn) peerReads(f uint64) bool { return c.peerFeatures.Load()&f != 0 }
