package refbroker

import (
	"errors"
	"fmt"
	"io"
	"reflect"
)

// The interfaces of the standard library that refbroker registers itself,
// so that streaming through an io.Reader or io.Writer argument works
// without a contract package: io.Reader, io.Writer, io.Closer,
// io.ReadCloser, io.WriteCloser and fmt.Stringer.
//
// io.Reader's Read fills the caller's buffer, which arguments (copied by
// value) cannot do. So a Reader crosses with a different method on the
// wire: readAtMost(n) returns up to n bytes, and the proxy's Read copies
// them into the caller's buffer. Each Read is one round trip, so wrap a
// remote reader in a bufio.Reader, or read in large buffers, for speed.
//
// io.Copy takes the fast way by itself: a Reader proxy is an io.WriterTo
// and a Writer proxy an io.ReaderFrom, which move streamChunk bytes per
// round trip (io.Copy's own buffer is 32 KiB, io.Discard's 8 KiB), with
// the Read and Write semantics of io.Copy's loop: the source is read only
// as far as the copy goes, each Read once; a failed Write stops the copy
// and counts what was written. And a Write of more than streamChunk
// bytes goes as several calls of streamChunk, so that no size of Write
// exceeds the message size limit; it stops at the first that fails.
// Under a MaxMessageSize below streamChunk, on either side, reads and
// writes move less per call (Conn.chunk): reads ask for, and answer with,
// what the side's own limit leaves room for, and a write the peer refuses
// as too large goes again as smaller ones (writeChunk).

// streamChunk is what one round trip moves in a proxy's Read, ReadAt,
// WriteTo, ReadFrom and large Write, where both sides'
// Options.MaxMessageSize allow it (Conn.chunk): a Read may return fewer
// bytes than asked, so a larger buffer simply takes more calls.
const streamChunk = 1 << 20

// Below a MaxMessageSize of streamChunk and a little more, the streams
// move less per round trip. chunkRoom is what a message holds besides its
// bytes (a Write's or a read's return head: a few dozen bytes), with room
// to spare; minChunk is the least they move.
const (
	chunkRoom = 1 << 10
	minChunk  = 1 << 10
)

// chunk is the most bytes one read or write of the built-in streams moves
// on c: streamChunk, or what c's MaxMessageSize leaves room for. (Reads
// also fit the peer's limit, whose side reads no more than its own chunk
// in one go; a write is cut down when the peer refuses one as too large:
// writeChunk.)
func (c *Conn) chunk() int { return max(minChunk, min(streamChunk, c.maxMsg-chunkRoom)) }

// writeChunk is chunk, or less once the peer has refused a write as too
// large for its MaxMessageSize (shrinkWrites).
func (c *Conn) writeChunk() int {
	n := c.chunk()
	if p := int(c.peerChunk.Load()); p > 0 {
		n = min(n, p)
	}
	return n
}

// shrinkWrites notes that the peer refused a write of n bytes as too large
// for it, and reports whether a smaller one is left to try.
func (c *Conn) shrinkWrites(n int) bool {
	if n <= minChunk {
		return false
	}
	half := int64(max(minChunk, n/2))
	for {
		p := c.peerChunk.Load()
		if p != 0 && p <= half {
			return true
		}
		if c.peerChunk.CompareAndSwap(p, half) {
			return true
		}
	}
}

// refusedAsTooLarge reports whether err, a write's of k bytes written,
// says the write was not taken because its message was too large: nothing
// was written, and a smaller write may go through.
func refusedAsTooLarge(err error, k int) bool {
	return k == 0 && errors.Is(err, ErrMessageTooLarge)
}

// wireAdapter makes an interface cross with another method set.
type wireAdapter struct {
	wire reflect.Type                                   // the interface served on the wire
	wrap func(v reflect.Value, chunk int) reflect.Value // the exported value, adapted to wire
	// serial names groups of wire methods whose calls run one at a time
	// on an export, each until its return is sent (serveCall): the user's
	// object need not be safe for concurrent use (io.Readers and
	// http.ResponseWriters seldom are, and a peer calling one from many
	// goroutines must not make this side race, or crash on a concurrent
	// map write), and a peer asking for many reads at once gets one result
	// held here at a time. Calls of different groups may run at once: an
	// io.ReadWriter's reads and writes are, so that a Read blocked waiting
	// for data does not hold up the Write that would bring it. A Close is
	// in none: it may be what ends a Read that blocks.
	serial [][]string
}

// adapt registers how a value of static type T crosses: as the wire
// interface W that wrap makes of it, with the groups of W's methods serial
// names run one at a time. wrap's second argument is the most bytes one
// read may return on the connection the value is exported on
// (Conn.chunk). Only init funcs call it.
func adapt[T, W any](serial [][]string, wrap func(T, int) W) {
	adaptedNamed[reflect.TypeFor[T]().String()] = reflect.TypeFor[T]()
	if _, ok := wireShown[reflect.TypeFor[W]()]; !ok {
		wireShown[reflect.TypeFor[W]()] = reflect.TypeFor[T]().String()
	}
	adapters[reflect.TypeFor[T]()] = wireAdapter{
		wire:   reflect.TypeFor[W](),
		serial: serial,
		wrap: func(v reflect.Value, chunk int) reflect.Value {
			w := wrap(v.Interface().(T), chunk)
			return reflect.ValueOf(&w).Elem()
		},
	}
}

// adapters is fixed at init and only read after; so is adaptedNamed, the
// same types by name (a Dispense names the interface it asks for).
var (
	adapters     = map[reflect.Type]wireAdapter{}
	adaptedNamed = map[string]reflect.Type{}
	// wireShown names each wire interface after the type it carries, in
	// messages and logs: a failure or panic of a reader's reads says
	// "io.Reader.Read", not the wire's "refbroker.readerWire.ReadAtMost"
	// (shownName).
	wireShown = map[reflect.Type]string{}
)

// wireMethodShown names wire methods after the methods they serve.
var wireMethodShown = map[string]string{"ReadAtMost": "Read", "ReadSpan": "ReadAt"}

// shownName is how messages name method m of interface t: after the type
// t carries if t is a wire interface.
func shownName(t reflect.Type, m string) string {
	if shown, ok := wireShown[t]; ok {
		if s, ok := wireMethodShown[m]; ok {
			m = s
		}
		return shown + "." + m
	}
	return t.String() + "." + m
}

// readerWire is how an io.Reader crosses.
type readerWire interface {
	ReadAtMost(n int) ([]byte, error)
}

// readCloserWire is how an io.ReadCloser crosses.
type readCloserWire interface {
	ReadAtMost(n int) ([]byte, error)
	Close() error
}

// afterReply is implemented by the built-in adapters that lend buffers to
// their calls: the serving side calls it once a call has returned and its
// return is sent (or has failed), when the connection no longer holds the
// call's arguments or results.
type afterReply interface {
	afterReply(args, outs []reflect.Value)
}

// streamBufs recycles the large buffers of streaming: ReadAtMost's,
// once its return is sent, and the frames large Writes arrive in, once
// the writer has them (io.Writer must not keep them). Reused, they spare
// a fresh megabyte per round trip, and the collections it would cost.
var streamBufs bufPool // capacity streamChunk

func getStreamBuf(n int) []byte {
	if b := streamBufs.get(); b != nil {
		return b[:n]
	}
	return make([]byte, n, streamChunk)
}

// recycle keeps b for reuse if it is one of streamBufs' size, or as a
// frame (putFrame) if it is large (typically a frame's tail that arrived
// shared, decoder.alias): b must be referenced nowhere else.
func recycle(b []byte) {
	switch {
	case cap(b) == streamChunk:
		streamBufs.put(b[:0])
	case len(b) >= bigBytes:
		putFrame(b[:0])
	}
}

// readerAdapter serves an io.Reader; max is the most one read returns
// (Conn.chunk of the connection it is exported on).
type readerAdapter struct {
	r   io.Reader
	max int
}

func (a readerAdapter) ReadAtMost(n int) ([]byte, error) {
	return serveRead("io.Reader.Read", n, a.max, a.r.Read)
}

// serveRead reads at most n bytes, as the peer asked, but no more than max
// (what one message of this side carries: a read may return fewer bytes
// than asked), with read (the method named what), into a buffer of
// readBuf's, and returns what was read: a negative n, or a read that
// claims more than its buffer, is an error.
func serveRead(what string, n, max int, read func([]byte) (int, error)) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("refbroker: %s: asked for %d bytes", what, n)
	}
	n = min(n, max)
	buf := readBuf(n)
	k, err := read(buf)
	if k < 0 || k > n { // a broken Read
		k, err = 0, fmt.Errorf("refbroker: %s returned %d for a buffer of %d bytes", what, k, n)
	}
	return buf[:k], err
}

// afterReply recycles ReadAtMost's buffer (the first result).
func (a readerAdapter) afterReply(_, outs []reflect.Value) { recycleRead(outs) }

// readBuf returns a buffer of n bytes for a read the peer asked for:
// streamBufs' for large ones, recycled after the reply (recycleRead).
func readBuf(n int) []byte {
	if n >= bigBytes {
		return getStreamBuf(n)
	}
	return make([]byte, n)
}

// recycleRead recycles the buffer of a read's result once its return is
// sent; outs are a served call's results, of whichever method (a Close's,
// a Seek's hold none).
func recycleRead(outs []reflect.Value) {
	if len(outs) == 2 && outs[0].Kind() == reflect.Slice && outs[0].Type().Elem().Kind() == reflect.Uint8 {
		if b := outs[0].Bytes(); cap(b) == streamChunk {
			recycle(b)
		}
	}
}

// writerAdapter serves an io.Writer: its Write, and the recycling of the
// frame a large Write arrived in.
type writerAdapter struct{ w io.Writer }

func (a writerAdapter) Write(p []byte) (int, error) { return a.w.Write(p) }

// afterReply recycles the frame of Write's argument (Close has none).
func (a writerAdapter) afterReply(args, _ []reflect.Value) {
	if len(args) == 1 && args[0].Kind() == reflect.Slice {
		recycle(args[0].Bytes())
	}
}

type writeCloserAdapter struct {
	writerAdapter
	c io.Closer
}

func (a writeCloserAdapter) Close() error { return a.c.Close() }

type readCloserAdapter struct {
	readerAdapter
	c io.Closer
}

func (a readCloserAdapter) Close() error { return a.c.Close() }

type readerProxy struct{ *Ref }

func (p readerProxy) Read(b []byte) (int, error)         { return remoteRead(p.Ref, b) }
func (p readerProxy) WriteTo(w io.Writer) (int64, error) { return remoteWriteTo(p.Ref, w) }

type readCloserProxy struct{ *Ref }

func (p readCloserProxy) Read(b []byte) (int, error)         { return remoteRead(p.Ref, b) }
func (p readCloserProxy) WriteTo(w io.Writer) (int64, error) { return remoteWriteTo(p.Ref, w) }
func (p readCloserProxy) Close() error                       { return p.Invoke("Close", nil) }

func remoteRead(r *Ref, b []byte) (int, error) {
	asked := min(len(b), r.conn.chunk())
	var data []byte
	err := r.Invoke("ReadAtMost", []any{asked}, &data)
	if len(data) > asked { // a peer's answer, not to be trusted
		return 0, tooMuchRead("io.Reader.Read", len(data), asked)
	}
	n := copy(b, data)
	recycle(data) // copied out: nothing else holds it
	return n, err
}

// tooMuchRead is the error of a remote read (the method named what) that
// returned more than it was asked for.
func tooMuchRead(what string, got, asked int) error {
	return fmt.Errorf("refbroker: %s: the remote reader returned %d bytes for a read of %d", what, got, asked)
}

// maxEmptyReads is how many reads in a row may return nothing and no
// error before a copy from a remote reader fails with io.ErrNoProgress, as
// bufio.Reader's do: the peer's reader must not keep the copy asking for
// ever.
const maxEmptyReads = 100

// remoteWriteTo copies the remote reader r into w until EOF, as io.Copy's
// loop would with a buffer of streamChunk bytes: each ReadAtMost is one
// Read of the remote reader, whose data goes to w before the next.
func remoteWriteTo(r *Ref, w io.Writer) (int64, error) {
	if home := plainWriterRef(w); homeable(r, home) {
		if n, ok, err := copyHome(r, home); ok {
			return n, err
		}
	}
	var total int64
	asked := r.conn.chunk()
	empty := 0 // reads in a row that returned nothing, and no error
	for {
		var data []byte
		err := r.Invoke("ReadAtMost", []any{asked}, &data)
		if len(data) > asked {
			return total, tooMuchRead("io.Reader.Read", len(data), asked)
		}
		if len(data) == 0 && err == nil {
			if empty++; empty == maxEmptyReads {
				return total, fmt.Errorf("refbroker: io.Reader.Read: %d reads in a row returned nothing: %w", empty, io.ErrNoProgress)
			}
			continue
		}
		empty = 0
		if len(data) > 0 {
			n, werr := w.Write(data)
			recycle(data) // io.Writer does not keep it
			total += int64(n)
			switch {
			case werr != nil:
				return total, werr
			case n < len(data):
				return total, io.ErrShortWrite
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

type writerProxy struct{ *Ref }

func (p writerProxy) Write(b []byte) (int, error)           { return remoteWrite(p.Ref, b) }
func (p writerProxy) ReadFrom(src io.Reader) (int64, error) { return remoteReadFrom(p.Ref, src) }

// remoteWrite writes b to the remote writer r, in calls of at most
// writeChunk bytes; it returns at the first that fails. A call refused as
// too large for the peer's MaxMessageSize wrote nothing, and goes again
// as smaller ones.
func remoteWrite(r *Ref, b []byte) (int, error) {
	total := 0
	for {
		part := b[:min(len(b), r.conn.writeChunk())]
		var n int
		err := r.Invoke("Write", []any{part}, &n)
		if refusedAsTooLarge(err, n) && r.conn.shrinkWrites(len(part)) {
			continue
		}
		if n < 0 || n > len(part) { // a peer's number, not to be trusted
			return total, fmt.Errorf("refbroker: io.Writer.Write: the remote writer reports %d bytes written of %d", n, len(part))
		}
		total += n
		b = b[len(part):]
		if err != nil || len(b) == 0 {
			return total, err
		}
		if n < len(part) {
			return total, io.ErrShortWrite
		}
	}
}

// remoteReadFrom copies src into the remote writer r until EOF, as
// io.Copy's loop would with a buffer of streamChunk bytes.
func remoteReadFrom(r *Ref, src io.Reader) (int64, error) {
	if home := plainReaderRef(src); homeable(home, r) {
		if n, ok, err := copyHome(home, r); ok {
			return n, err
		}
	}
	return copyToRemote(r, src, nil)
}

// copyToRemote is remoteReadFrom through this side: each Read of src, up
// to streamChunk bytes, is one Write of the remote writer r. before, if
// not nil, runs before each Write.
func copyToRemote(r *Ref, src io.Reader, before func()) (int64, error) {
	// A pooled buffer: src must not keep it (io.Reader), and a Write's
	// frame does not hold it once remoteWrite has returned (the write
	// queue copies what it keeps).
	buf := getStreamBuf(streamChunk)
	defer recycle(buf)
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if before != nil {
				before()
			}
			wn, werr := remoteWrite(r, buf[:n])
			total += int64(wn)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// CopyInChunks copies r into w as io.Copy would, one Write of w per Read
// of r, but reading up to a megabyte at a time, not io.Copy's 32 KiB (or
// io.Discard's 8 KiB), and using neither r's WriteTo nor w's ReadFrom. It
// is the WriteTo that refgen gives the proxy of a contract's own reader
// (an interface with io.Reader's Read method) and the ReadFrom it gives
// the proxy of a contract's own writer (io.Writer's Write), so that
// io.Copy from or into either takes a round trip per megabyte.
func CopyInChunks(w io.Writer, r io.Reader) (int64, error) {
	buf := getStreamBuf(streamChunk)
	defer recycle(buf) // w must not keep it (io.Writer)
	return io.CopyBuffer(writerOnly{w}, readerOnly{r}, buf)
}

// readerOnly and writerOnly hide every method but Read and Write, so that
// io.CopyBuffer uses its buffer.
type (
	readerOnly struct{ r io.Reader }
	writerOnly struct{ w io.Writer }
)

func (r readerOnly) Read(p []byte) (int, error)  { return r.r.Read(p) }
func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

type closerProxy struct{ *Ref }

func (p closerProxy) Close() error { return p.Invoke("Close", nil) }

type writeCloserProxy struct{ *Ref }

func (p writeCloserProxy) Write(b []byte) (int, error)           { return remoteWrite(p.Ref, b) }
func (p writeCloserProxy) ReadFrom(src io.Reader) (int64, error) { return remoteReadFrom(p.Ref, src) }
func (p writeCloserProxy) Close() error                          { return p.Invoke("Close", nil) }

type stringerProxy struct{ *Ref }

func (p stringerProxy) String() string {
	var s string
	if err := p.Invoke("String", nil, &s); err != nil {
		p.LogFailure("String", err)
	}
	return s
}

func init() {
	adapt([][]string{{"ReadAtMost"}}, func(r io.Reader, max int) readerWire { return readerAdapter{r, max} })
	adapt([][]string{{"ReadAtMost"}}, func(rc io.ReadCloser, max int) readCloserWire {
		return readCloserAdapter{readerAdapter{rc, max}, rc}
	})
	adapt([][]string{{"Write"}}, func(w io.Writer, _ int) io.Writer { return writerAdapter{w} })
	adapt([][]string{{"Write"}}, func(wc io.WriteCloser, _ int) io.WriteCloser { return writeCloserAdapter{writerAdapter{wc}, wc} })
	RegisterInterface[io.Reader](func(r *Ref) io.Reader { return readerProxy{r} })
	RegisterInterface[io.ReadCloser](func(r *Ref) io.ReadCloser { return readCloserProxy{r} })
	RegisterInterface[io.Writer](func(r *Ref) io.Writer { return writerProxy{r} })
	RegisterInterface[io.Closer](func(r *Ref) io.Closer { return closerProxy{r} })
	RegisterInterface[io.WriteCloser](func(r *Ref) io.WriteCloser { return writeCloserProxy{r} })
	RegisterInterface[fmt.Stringer](func(r *Ref) fmt.Stringer { return stringerProxy{r} })
}
