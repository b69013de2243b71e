package refbroker

import (
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

// maxRemoteRead bounds one Read through a proxy: a Read may return fewer
// bytes than asked, so a larger buffer simply takes more calls.
const maxRemoteRead = 1 << 20

// wireAdapter makes an interface cross with another method set.
type wireAdapter struct {
	wire reflect.Type                        // the interface served on the wire
	wrap func(v reflect.Value) reflect.Value // the exported value, adapted to wire
}

// adapters is fixed at init and only read after.
var adapters = map[reflect.Type]wireAdapter{}

// readerWire is how an io.Reader crosses.
type readerWire interface {
	ReadAtMost(n int) ([]byte, error)
}

// readCloserWire is how an io.ReadCloser crosses.
type readCloserWire interface {
	ReadAtMost(n int) ([]byte, error)
	Close() error
}

type readerAdapter struct{ r io.Reader }

func (a readerAdapter) ReadAtMost(n int) ([]byte, error) {
	if n < 0 || n > maxRemoteRead {
		return nil, fmt.Errorf("refbroker: io.Reader.Read: asked for %d bytes, the limit is %d", n, maxRemoteRead)
	}
	buf := make([]byte, n)
	k, err := a.r.Read(buf)
	return buf[:k], err
}

type readCloserAdapter struct {
	readerAdapter
	c io.Closer
}

func (a readCloserAdapter) Close() error { return a.c.Close() }

type readerProxy struct{ *Ref }

func (p readerProxy) Read(b []byte) (int, error) { return remoteRead(p.Ref, b) }

type readCloserProxy struct{ *Ref }

func (p readCloserProxy) Read(b []byte) (int, error) { return remoteRead(p.Ref, b) }
func (p readCloserProxy) Close() error               { return p.Invoke("Close", nil) }

func remoteRead(r *Ref, b []byte) (int, error) {
	var data []byte
	err := r.Invoke("ReadAtMost", []any{min(len(b), maxRemoteRead)}, &data)
	return copy(b, data), err
}

type writerProxy struct{ *Ref }

func (p writerProxy) Write(b []byte) (int, error) {
	var n int
	err := p.Invoke("Write", []any{b}, &n)
	return n, err
}

type closerProxy struct{ *Ref }

func (p closerProxy) Close() error { return p.Invoke("Close", nil) }

type writeCloserProxy struct{ *Ref }

func (p writeCloserProxy) Write(b []byte) (int, error) { return writerProxy(p).Write(b) }
func (p writeCloserProxy) Close() error                { return p.Invoke("Close", nil) }

type stringerProxy struct{ *Ref }

func (p stringerProxy) String() string {
	var s string
	if err := p.Invoke("String", nil, &s); err != nil {
		p.LogFailure("String", err)
	}
	return s
}

func init() {
	adapters[reflect.TypeFor[io.Reader]()] = wireAdapter{
		wire: reflect.TypeFor[readerWire](),
		wrap: func(v reflect.Value) reflect.Value {
			var w readerWire = readerAdapter{v.Interface().(io.Reader)}
			return reflect.ValueOf(&w).Elem()
		},
	}
	adapters[reflect.TypeFor[io.ReadCloser]()] = wireAdapter{
		wire: reflect.TypeFor[readCloserWire](),
		wrap: func(v reflect.Value) reflect.Value {
			rc := v.Interface().(io.ReadCloser)
			var w readCloserWire = readCloserAdapter{readerAdapter{rc}, rc}
			return reflect.ValueOf(&w).Elem()
		},
	}
	RegisterInterface[io.Reader](func(r *Ref) io.Reader { return readerProxy{r} })
	RegisterInterface[io.ReadCloser](func(r *Ref) io.ReadCloser { return readCloserProxy{r} })
	RegisterInterface[io.Writer](func(r *Ref) io.Writer { return writerProxy{r} })
	RegisterInterface[io.Closer](func(r *Ref) io.Closer { return closerProxy{r} })
	RegisterInterface[io.WriteCloser](func(r *Ref) io.WriteCloser { return writeCloserProxy{r} })
	RegisterInterface[fmt.Stringer](func(r *Ref) fmt.Stringer { return stringerProxy{r} })
}
