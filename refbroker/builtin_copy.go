package refbroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
)

// Copies at home. When one side io.Copies a reader of its peer into a
// writer of the same peer (io.Copy(w, r) in a plugin, with w and r both
// the host's), every byte would cross twice, in and out, to be copied
// between two objects that live together. Instead the reader's proxy asks
// its owner to make the copy (copyHomeMethod): the owner runs io.Copy's
// loop between its own objects, with a buffer of streamChunk bytes, each
// Read and each Write taking the turn its export's calls take
// (wireAdapter.serial), as the peer's calls would, and answers with the
// bytes written and the error, as io.Copy returns them. Nothing crosses
// but the request and the answer.
//
// It applies to the plain built-in streams only, on both sides: a
// reference crossed as io.Reader or io.ReadCloser copied into one crossed
// as io.Writer or io.WriteCloser (not an http.ResponseWriter, whose proxy
// keeps headers of its own, nor a file or seeker, whose proxies read by
// other methods). A peer of an older refplug rejects the request unread
// (it has no such method), and the copy goes through this side as before;
// so does a copy on a connection with Options.CallTimeout, which bounds
// each Read and Write of the copy, not the whole.

// copyHomeName is the wire method of a copy at home. It is not exported,
// so no method of a user's interface, and no grant, can have it.
const copyHomeName = "copyHome"

// copyHomeServed is false only in tests, which play a peer of an older
// refplug that rejects a copy at home.
var copyHomeServed = true

// copyHomeMethod is the plan of a copy at home, called on the reader's
// export with the writer's export ID; the context ends the copy between
// two Reads when the caller gives up or the connection ends.
var copyHomeMethod = func() *methodPlan {
	fp, err := funcPlanFor(reflect.TypeFor[func(context.Context, uint64) (int64, error)]())
	if err != nil {
		panic(err)
	}
	return newMethodPlan(copyHomeName, "io.Copy", -1, fp)
}()

// homeable reports whether a copy from the remote reader r into the
// remote writer w (references behind plain stream proxies, or nil:
// plainReaderRef, plainWriterRef) can be made at home: both of one
// connection, which has no call timeout.
func homeable(r, w *Ref) bool {
	return r != nil && w != nil && r.conn == w.conn && r.conn.callTimeout == 0
}

// plainReaderRef returns the reference behind r if r is the proxy of a
// plain remote reader, or nil.
func plainReaderRef(r io.Reader) *Ref {
	switch p := r.(type) {
	case readerProxy:
		return p.Ref
	case readCloserProxy:
		return p.Ref
	}
	return nil
}

// plainWriterRef returns the reference behind w if w is the proxy of a
// plain remote writer, or nil.
func plainWriterRef(w io.Writer) *Ref {
	switch p := w.(type) {
	case writerProxy:
		return p.Ref
	case writeCloserProxy:
		return p.Ref
	}
	return nil
}

func plainReaderType(t reflect.Type) bool { return t == readerType || t == readCloserType }
func plainWriterType(t reflect.Type) bool { return t == writerType || t == writeCloserType }

var (
	readerType      = reflect.TypeFor[io.Reader]()
	readCloserType  = reflect.TypeFor[io.ReadCloser]()
	writerType      = reflect.TypeFor[io.Writer]()
	writeCloserType = reflect.TypeFor[io.WriteCloser]()
)

// copyHome asks the owner of the remote reader r to copy it into its
// writer w, and returns what io.Copy would. ok is false if the owner
// rejected the request unread (an older refplug): nothing was copied, and
// the caller copies through this side.
func copyHome(r, w *Ref) (n int64, ok bool, err error) {
	if w.released.Load() {
		return 0, true, &callError{method: "io.Writer.Write", sentinel: ErrReleased}
	}
	var copyErr error
	outs := []reflect.Value{reflect.ValueOf(&n).Elem(), reflect.ValueOf(&copyErr).Elem()}
	err = r.call(context.Background(), copyHomeMethod, []reflect.Value{reflect.ValueOf(w.id)}, outs)
	runtime.KeepAlive(w) // its release must not overtake the request
	var rejected *rejectedCall
	switch {
	case errors.As(err, &rejected):
		return 0, false, nil
	case err != nil:
		return n, true, err
	}
	return n, true, copyErr
}

// copyHomeFunc returns what serves a copy at home from src, our export,
// or the zero Value if src is not a plain reader.
func (c *Conn) copyHomeFunc(src *export) reflect.Value {
	if !copyHomeServed || !plainReaderType(src.static) {
		return reflect.Value{}
	}
	r, ok := src.val.Interface().(io.Reader)
	if !ok {
		return reflect.Value{}
	}
	return reflect.ValueOf(func(ctx context.Context, wid uint64) (int64, error) {
		dst := c.export(wid)
		var w io.Writer
		if dst != nil && plainWriterType(dst.static) {
			w, _ = dst.val.Interface().(io.Writer)
		}
		if w == nil {
			return 0, fmt.Errorf("refbroker: io.Copy: reference #%d is not a writer exported here", wid)
		}
		return copyTaking(ctx, src, r, dst, w)
	})
}

// copyTaking copies r, exported as src, into w, exported as dst, as
// io.Copy's loop does with a buffer of streamChunk bytes, each Read and
// Write in its export's turn; it stops before a Read once ctx has ended.
func copyTaking(ctx context.Context, src *export, r io.Reader, dst *export, w io.Writer) (int64, error) {
	// The buffer is taken in the reader's first turn: copies waiting for
	// it, however many the peer asks for at once, hold none.
	var buf []byte
	defer func() {
		if buf != nil {
			recycle(buf)
		}
	}()
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("refbroker: io.Copy: %w", err)
		}
		var k int
		var rerr error
		src.during("ReadAtMost", func() {
			if buf == nil {
				buf = getStreamBuf(streamChunk)
			}
			k, rerr = r.Read(buf)
		})
		if k < 0 || k > len(buf) { // a broken Read
			return total, fmt.Errorf("refbroker: io.Reader.Read returned %d for a buffer of %d bytes", k, len(buf))
		}
		if k > 0 {
			var n int
			var werr error
			dst.during("Write", func() { n, werr = w.Write(buf[:k]) })
			if n < 0 || n > k {
				return total, fmt.Errorf("refbroker: io.Writer.Write returned %d for %d bytes", n, k)
			}
			total += int64(n)
			switch {
			case werr != nil:
				return total, werr
			case n < k:
				return total, io.ErrShortWrite
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

// during runs f in method's turn on x (serialize), ending the turn even if
// f panics.
func (x *export) during(method string, f func()) {
	if end := x.serialize(method); end != nil {
		defer end()
	}
	f()
}
