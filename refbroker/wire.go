package refbroker

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"reflect"
)

// This file holds the byte-level layer of the wire format described in
// docs/wire.md: message and tag constants, and the encoder and decoder
// primitives (varints, fixed-width floats, length-prefixed bytes). The
// encoder and decoder know nothing of connections: the value codecs
// (codec.go) lay values out with them, and hand references to a refWriter
// or refReader, which the connection provides (export.go, import.go).

// Message types: the first byte of every frame body.
const (
	msgCall      byte = 1  // seq, target, method, ctx, args...
	msgReturn    byte = 2  // seq, status, results... | error
	msgCancel    byte = 3  // seq, reason, cause
	msgRelease   byte = 4  // n, (id, count) * n [, features: the hello, features.go]
	msgBootstrap byte = 5  // seq, name, interface, n, (method, signature) * n
	msgTypeInfo  byte = 6  // type ID, type, n, (method, signature) * n
	msgDescribe  byte = 7  // seq
	msgCallJSON  byte = 8  // seq, object, method, n, (JSON argument) * n
	msgLayouts   byte = 9  // n, (struct name, nf, (field, Go type, wire type) * nf) * n
	msgPing      byte = 10 // seq — only to a peer that announced featPing
)

// Return statuses.
const (
	statusOK     byte = 0 // the method ran; its results follow
	statusFailed byte = 1 // the call failed in the broker or panicked; an error follows
	// statusRejected: the call was refused before its arguments were read
	// (unknown reference or method, message too large); an error follows.
	// The caller takes back the references it sent in the call.
	statusRejected byte = 2
)

// Reference tags, used where a value crosses by reference.
const (
	refNil   byte = 0 // nil interface or func
	refMine  byte = 1 // the sender's export: the receiver gets a proxy
	refHome  byte = 2 // the receiver's own export coming home: it gets the original
	refData  byte = 3 // in an `any` position only: a registered type by value
	refError byte = 4 // in an `any` position only: an error
)

// Context flags in a call header.
const (
	ctxNone     byte = 0 // the method takes no context
	ctxPlain    byte = 1 // a context without deadline
	ctxDeadline byte = 2 // a context with deadline; the nanoseconds remaining follow
	// ctxBufferLength, added to one of the above: the call's first
	// argument, the buffer of io.Reader's Read or io.ReaderAt's ReadAt,
	// is sent as its length alone (featBufferLength).
	ctxBufferLength byte = 0x40
)

// maxDepth bounds nesting while encoding and decoding, so a cyclic value or a
// hostile message cannot exhaust the stack.
const maxDepth = 1000

// refWriter writes a value that crosses by reference (an interface or func
// in a position of static type t). The connection implements it
// (export.go).
type refWriter interface {
	writeRef(e *encoder, v reflect.Value, t reflect.Type) error
	describe(ctx context.Context, types ...reflect.Type) error
	homeKey(err error) string // errhome.go
}

// refReader reads a reference into v, a position of static type t, and
// says how to read a struct the peer may lay out otherwise. The connection
// implements it (import.go, layouttable.go).
type refReader interface {
	readRef(d *decoder, v reflect.Value, t reflect.Type)
	structPlan(t reflect.Type) *structPlan
	checkLayouts(t reflect.Type)
	homeError(n uint64) error // errhome.go
	connSerial() uint64
}

// encoder appends one message to buf.
type encoder struct {
	buf   []byte
	refs  refWriter // nil: the message may carry no references
	limit int       // the most len(buf) may reach; 0: no limit
	// admitted is the Conn that counts this message among those being
	// built (Conn.admit); freeing the encoder ends that.
	admitted *Conn
	depth    int
	sent     []uint64 // export IDs sent in this message, once per send
	home     []*Ref   // Refs sent home in this message: kept alive until it is written
	// segs are large byte slices the message carries without copying them
	// into buf (see bigBytes); extra is their total length.
	segs  []segment
	extra int
	// inline > 0 while everything must be copied into buf (a part of the
	// message that is copied out of buf once encoded).
	inline int
	// ctx is the context of the call this message carries, if any: the
	// type descriptions sent ahead of it wait for room no longer.
	ctx context.Context
}

// segment is a byte slice that goes into the message after buf[:at].
type segment struct {
	at   int
	data []byte
}

// bigBytes is the size from which a byte slice crosses without copies: it
// is written from the sender's own slice (a writev), and the receiver's
// slice is the part of the frame it arrived in (see decoder.bigBytes).
const bigBytes = 64 << 10

// rawBytes writes b, uncopied if it is large: the caller must leave b
// alone until the message is written (a call's arguments and a method's
// results are, while the call waits for its return or the return is
// sent).
func (e *encoder) rawBytes(b []byte) {
	if len(b) < bigBytes || e.inline > 0 {
		e.buf = append(e.buf, b...)
		return
	}
	e.segs = append(e.segs, segment{at: len(e.buf), data: b})
	e.extra += len(b)
}

// mark is a point in the message to go back to (reset).
type mark struct{ buf, segs, extra int }

func (e *encoder) mark() mark { return mark{len(e.buf), len(e.segs), e.extra} }

// reset drops what was written after m.
func (e *encoder) reset(m mark) {
	e.buf, e.extra = e.buf[:m.buf], m.extra
	clear(e.segs[m.segs:])
	e.segs = e.segs[:m.segs]
}

// size is the length of the message so far, frame room included.
func (e *encoder) size() int { return len(e.buf) + e.extra }

func (e *encoder) byte1(b byte)     { e.buf = append(e.buf, b) }
func (e *encoder) uvarint(x uint64) { e.buf = binary.AppendUvarint(e.buf, x) }
func (e *encoder) varint(x int64)   { e.buf = binary.AppendVarint(e.buf, x) }
func (e *encoder) float64(f float64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(f))
}
func (e *encoder) float32(f float32) {
	e.buf = binary.LittleEndian.AppendUint32(e.buf, math.Float32bits(f))
}
func (e *encoder) string(s string) { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) bytes(b []byte)  { e.uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }

func (e *encoder) bool(b bool) {
	if b {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
}

// full reports an error once the message has passed its size limit, so
// that encoding stops there instead of building a message that cannot be
// sent. Codecs of collections check it after each element.
func (e *encoder) full() error {
	if e.limit > 0 && e.size() > e.limit {
		return &sizeError{limit: e.limit - frameRoom}
	}
	return nil
}

// sizeError says a message outgrew the size limit while it was encoded.
type sizeError struct{ limit int }

func (e *sizeError) Error() string {
	return fmt.Sprintf("message exceeds the limit of %d bytes (Options.MaxMessageSize)", e.limit)
}

func (e *sizeError) Is(target error) bool { return target == ErrMessageTooLarge }

// decoder reads one message from buf. Errors are sticky: after the first,
// every read returns a zero value and err keeps the first error, so codecs
// check it once per element rather than after every read.
type decoder struct {
	buf   []byte
	off   int
	refs  refReader // nil: a reference in the message is an error
	depth int
	err   error
	ctx   context.Context // the served call's context, if any (for an *http.Request)
	// aliased is set once a decoded value shares buf (alias): buf must
	// not be reused.
	aliased bool
	// frameCap is the capacity of the buffer buf is part of, if it is a
	// frame that may be aliased; 0 if it may not.
	frameCap int
	// spent is the memory decoding has taken so far, of budget (charge);
	// budget is 0 until the first charge sets it from buf's length.
	spent, budget uint64
	// layoutSpent is the memory taken by fields of this side's structs
	// the sender's layout lacks (chargeElems), against layoutFactor.
	layoutSpent uint64
}

// alias returns the byte slice b, just read from d's frame, to hand to
// the receiver as it is, sharing the frame, and true; or false if b must
// be copied. b is shared when it is large and at least half the frame's
// buffer, so that keeping it does not keep much more memory alive; the
// frame is then not reused, unless the receiver gives b back (recycle).
// When no other large slice can follow b in the frame, b keeps the rest
// of the buffer as its capacity, so that, given back, it holds a frame of
// the same size again.
func (d *decoder) alias(b []byte) ([]byte, bool) {
	if d.frameCap == 0 || len(b) < bigBytes || 2*len(b) < d.frameCap {
		return nil, false
	}
	d.aliased = true
	if len(d.buf)-d.off < bigBytes && cap(d.buf)-len(d.buf) <= frameSlack {
		full := d.buf[:cap(d.buf)]
		clear(full[len(d.buf):]) // no stale bytes of an earlier message
		start := d.off - len(b)
		return full[start : start+len(b)], true
	}
	return b, true
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) remaining() int { return len(d.buf) - d.off }

// The memory decoding a message may take: decodeBase, and decodeFactor
// bytes for each byte of the message. The sender decides how much memory
// a byte of it makes this side allocate (a struct whose fields only this
// side has costs the sender one byte an element, and this side the
// struct's size, so a megabyte could ask for gigabytes), so what decoding
// allocates for slices, maps, pointers and values in an any is counted
// (charge), and a message that asks for more is refused.
const (
	decodeBase   = 256 << 10
	decodeFactor = 64
)

// charge counts n bytes about to be allocated for the value being
// decoded, and reports whether they fit the message's budget; if they do
// not, d fails.
func (d *decoder) charge(n uint64) bool {
	if d.err != nil {
		return false
	}
	if n > d.left() {
		d.fail(malformed("the message asks for more memory than its budget of %d bytes (%d KiB and %d bytes for each byte of the message)",
			d.budget, decodeBase>>10, decodeFactor))
		return false
	}
	d.spent += n
	return true
}

// left is what is left of d's budget.
func (d *decoder) left() uint64 {
	if d.budget == 0 {
		d.budget = decodeBase + decodeFactor*uint64(len(d.buf))
	}
	return d.budget - d.spent
}

// chargeN is charge for count values of size bytes each.
func (d *decoder) chargeN(count int, size uintptr) bool {
	return d.charge(times(count, uint64(size)))
}

// times is count × size, or the largest uint64 if that overflows.
func times(count int, size uint64) uint64 {
	hi, lo := bits.Mul64(uint64(count), size)
	if hi != 0 {
		lo = math.MaxUint64
	}
	return lo
}

// The memory decoding a message may take, besides its budget, for the
// fields of this side's structs that the sender's version of them lacks:
// layoutFactor bytes for each byte of the message, at most layoutCap.
// Those fields keep their zero values and cost the sender nothing, so a
// contract that gained many fields since the peer was built asks for more
// memory per byte than any other value: a record that grew from two
// fields to twenty-two strings decodes 344 bytes from 4.4 (78 a byte), and
// 5,000 of them were refused by the budget alone. A peer that declares a
// struct with none of this side's fields gets no more than this either.
const (
	layoutFactor = 128
	layoutCap    = 1 << 30
)

// chargeElems is chargeN for count values of type t. Where the peer lays
// out a struct t otherwise and the values do not fit the budget whole,
// the bytes of them no field of the sender's fills are counted apart,
// against the layout budget (layoutFactor).
func (d *decoder) chargeElems(count int, t reflect.Type) bool {
	size := uint64(t.Size())
	if t.Kind() != reflect.Struct || d.refs == nil {
		return d.charge(times(count, size))
	}
	p := d.refs.structPlan(t)
	if p == nil || p.err != nil || p.ownOnly == 0 || times(count, size) <= d.left() {
		return d.charge(times(count, size))
	}
	if !d.charge(times(count, size-p.ownOnly)) {
		return false
	}
	n, limit := times(count, p.ownOnly), min(layoutFactor*uint64(len(d.buf)), layoutCap)
	if n > limit-min(limit, d.layoutSpent) {
		d.fail(malformed("the message asks for more memory than its budget of %d bytes for the fields of this side's %s the sender's version lacks (%d bytes an element, zero values; %d bytes for each byte of the message, %d MiB at most)",
			limit, t, p.ownOnly, layoutFactor, layoutCap>>20))
		return false
	}
	d.layoutSpent += n
	return true
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.fail(malformed("message ends early at byte %d", d.off))
		return 0
	}
	b := d.buf[d.off]
	d.off++
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail(malformed("bad varint at byte %d", d.off))
		return 0
	}
	d.off += n
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail(malformed("bad varint at byte %d", d.off))
		return 0
	}
	d.off += n
	return x
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.remaining() {
		d.fail(malformed("%d bytes wanted at byte %d, %d left", n, d.off, d.remaining()))
		return nil
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

func (d *decoder) float64() float64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

func (d *decoder) float32() float32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(b))
}

func (d *decoder) bool() bool {
	switch d.byte1() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(malformed("bad bool at byte %d", d.off-1))
		return false
	}
}

// length reads a count of elements that each take at least minSize bytes on
// the wire, and refuses a count the rest of the message cannot hold, so a
// hostile count cannot make the receiver allocate without bound.
func (d *decoder) length(minSize int) int {
	return d.checkLength(d.uvarint(), minSize)
}

// nilOrLength reads the encoding of a slice or map length: 0 for nil,
// n+1 for n elements.
func (d *decoder) nilOrLength(minSize int) (n int, isNil bool) {
	x := d.uvarint()
	if x == 0 || d.err != nil {
		return 0, true
	}
	return d.checkLength(x-1, minSize), false
}

func (d *decoder) checkLength(n uint64, minSize int) int {
	if d.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(d.remaining()/minSize) {
		d.fail(malformed("length %d at byte %d exceeds the message", n, d.off))
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte { return d.take(d.length(1)) }

func (d *decoder) string() string { return string(d.bytes()) }

// maxName bounds a name the peer gives in a request (a method, a root
// object, an interface): names go into errors, logs and the names of the
// methods a Dispense grants, so an unbounded one would let a peer make
// this side build messages and strings many times the size of its own
// (an error quotes a name, up to four bytes a byte). Go's names are far
// shorter.
const maxName = 64 << 10

// name reads a string that is a name (see maxName): a longer one is
// malformed, what saying what it names, and so is one that is not
// printable text (printableText).
func (d *decoder) name(what string) string {
	b := d.bytes()
	if len(b) > maxName {
		d.fail(malformed("%s of %d bytes; at most %d", what, len(b), maxName))
		return ""
	}
	return d.printable(what, b)
}

// enter and leave track nesting; enter reports false past maxDepth.
func (e *encoder) enter() bool { e.depth++; return e.depth <= maxDepth }
func (e *encoder) leave()      { e.depth-- }
func (d *decoder) enter() bool {
	d.depth++
	if d.depth > maxDepth {
		d.fail(malformed("nesting deeper than %d", maxDepth))
		return false
	}
	return true
}
func (d *decoder) leave() { d.depth-- }
