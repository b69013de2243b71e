package refbroker

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
)

// net/http crosses, so that a plugin can serve HTTP behind a host's
// server (a plugin's ServeHTTP(w, r) hook):
//
//   - *http.Request crosses by value (method, URL, protocol, header,
//     trailer, host, remote address, request URI, content length, transfer
//     encoding, Close, and Form and PostForm where parsed), with its Body
//     streamed as an io.ReadCloser reference; on the receiving side its
//     context is the call's, which ends when the caller's request context
//     does (a call passing a request carries that context as a method
//     with a context parameter would);
//   - http.ResponseWriter crosses by reference: the receiver's proxy keeps
//     the header map locally and sends it with the status at WriteHeader
//     (or the first Write), and implements http.Flusher, flushing the
//     owner's writer if it can, and io.ReaderFrom, writing a megabyte a
//     round trip when io.Copy (http.ServeContent's) copies into it;
//   - http.Handler has a proxy, so a served object can be dispensed as one.

// converter makes a type cross as another: to builds the wire value, from
// the value from it (d carries the call's context).
type converter struct {
	wire reflect.Type
	to   func(v reflect.Value) reflect.Value
	from func(w reflect.Value, d *decoder) (reflect.Value, error)
}

// converters is fixed at init and only read after.
var converters = map[reflect.Type]converter{}

var requestType = reflect.TypeFor[*http.Request]()

// httpRequestWire is how an *http.Request crosses.
type httpRequestWire struct {
	Method, URL, Proto     string
	ProtoMajor, ProtoMinor int
	Header, Trailer        map[string][]string
	Host, RemoteAddr       string
	RequestURI             string
	ContentLength          int64
	TransferEncoding       []string
	Close                  bool
	Form, PostForm         map[string][]string
	Body                   io.ReadCloser
}

func requestToWire(v reflect.Value) reflect.Value {
	w := reflect.New(reflect.TypeFor[*httpRequestWire]()).Elem()
	if v.IsNil() {
		return w
	}
	r := v.Interface().(*http.Request)
	rw := &httpRequestWire{
		Method: r.Method, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: r.Header, Trailer: r.Trailer, Host: r.Host, RemoteAddr: r.RemoteAddr,
		RequestURI: r.RequestURI, ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		Close: r.Close, Form: r.Form, PostForm: r.PostForm,
	}
	if r.URL != nil {
		rw.URL = r.URL.String()
	}
	if r.Body != nil && r.Body != http.NoBody {
		rw.Body = r.Body
	}
	w.Set(reflect.ValueOf(rw))
	return w
}

func requestFromWire(w reflect.Value, d *decoder) (reflect.Value, error) {
	if w.IsNil() {
		return reflect.Zero(requestType), nil
	}
	rw := w.Interface().(*httpRequestWire)
	u, err := url.Parse(rw.URL)
	if err != nil {
		return reflect.Value{}, fmt.Errorf("the request's URL: %w", err)
	}
	r := &http.Request{
		Method: rw.Method, URL: u, Proto: rw.Proto, ProtoMajor: rw.ProtoMajor, ProtoMinor: rw.ProtoMinor,
		Header: http.Header(rw.Header), Trailer: http.Header(rw.Trailer), Host: rw.Host, RemoteAddr: rw.RemoteAddr,
		RequestURI: rw.RequestURI, ContentLength: rw.ContentLength, TransferEncoding: rw.TransferEncoding,
		Close: rw.Close, Form: url.Values(rw.Form), PostForm: url.Values(rw.PostForm), Body: rw.Body,
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	if d.ctx != nil {
		r = r.WithContext(d.ctx)
	}
	return reflect.ValueOf(r), nil
}

// responseWire is how an http.ResponseWriter crosses.
type responseWire interface {
	WriteHeader(status int, header map[string][]string) error
	Write(b []byte) (int, error)
	Flush() error
}

type responseAdapter struct{ w http.ResponseWriter }

func (a responseAdapter) WriteHeader(status int, header map[string][]string) error {
	if sw, ok := a.w.(*sentWriter); ok {
		return sw.writeHeaderWith(status, header)
	}
	setHeader(a.w, header)
	a.w.WriteHeader(status)
	return nil
}

func setHeader(w http.ResponseWriter, header map[string][]string) {
	h := w.Header()
	for k, v := range header {
		h[k] = v
	}
}

func (a responseAdapter) Write(b []byte) (int, error) { return a.w.Write(b) }

func (a responseAdapter) Flush() error {
	if f, ok := a.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// responseProxy is the receiver's http.ResponseWriter: one per remote
// writer, keeping the header until it is sent.
type responseProxy struct {
	*Ref
	mu     sync.Mutex
	header http.Header
	wrote  bool
}

func (p *responseProxy) Header() http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.header == nil {
		p.header = http.Header{}
	}
	return p.header
}

func (p *responseProxy) WriteHeader(status int) {
	p.mu.Lock()
	if p.wrote {
		p.mu.Unlock()
		return
	}
	p.wrote = true
	h := map[string][]string(p.header.Clone())
	p.mu.Unlock()
	if err := p.Invoke("WriteHeader", []any{status, h}); err != nil {
		p.LogFailure("WriteHeader", err)
	}
}

func (p *responseProxy) Write(b []byte) (int, error) {
	p.mu.Lock()
	wrote := p.wrote
	p.mu.Unlock()
	if !wrote {
		p.WriteHeader(http.StatusOK)
	}
	return remoteWrite(p.Ref, b) // in parts of streamChunk, counts checked
}

// ReadFrom copies src into the response as a writer proxy's ReadFrom does
// (so io.Copy, http.ServeContent and http.FileServer in a plugin send up
// to a megabyte a round trip, not io.Copy's 32 KiB): each Read of src is
// one Write, sent as it comes. As with Write, the header goes with the
// first bytes: a handler whose source fails at once can still answer
// with an error status.
func (p *responseProxy) ReadFrom(src io.Reader) (int64, error) {
	return copyToRemote(p.Ref, src, func() {
		if !p.headerSent() {
			p.WriteHeader(http.StatusOK)
		}
	})
}

func (p *responseProxy) Flush() {
	p.mu.Lock()
	wrote := p.wrote
	p.mu.Unlock()
	if !wrote {
		p.WriteHeader(http.StatusOK)
	}
	if err := p.Invoke("Flush", nil); err != nil {
		p.LogFailure("Flush", err)
	}
}

func (p *responseProxy) headerSent() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wrote
}

// sentWriter is a local http.ResponseWriter as a remote handler is given
// it: it notes whether the header has gone, so that a failed call answers
// 502 only when nothing was sent yet; and once the local ServeHTTP has
// returned (finish), it refuses to be used, as net/http requires, and
// after any use still running has ended. (The remote handler may go on
// after its call was abandoned: the client went away.)
type sentWriter struct {
	http.ResponseWriter
	sent atomic.Bool
	mu   sync.RWMutex // held for reading by each use, for writing by finish
	done bool
}

// errHandlerReturned is what a remote handler's writes get once the local
// ServeHTTP has returned.
var errHandlerReturned = errors.New("refbroker: the http.ResponseWriter was used after its ServeHTTP returned (the client went away)")

// use runs f unless the writer is finished, and reports whether it ran.
func (w *sentWriter) use(f func()) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.done {
		return false
	}
	w.sent.Store(true)
	f()
	return true
}

// finish waits for the uses in progress and refuses later ones.
func (w *sentWriter) finish() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func (w *sentWriter) WriteHeader(status int) { w.use(func() { w.ResponseWriter.WriteHeader(status) }) }

func (w *sentWriter) writeHeaderWith(status int, header map[string][]string) error {
	if !w.use(func() { setHeader(w.ResponseWriter, header); w.ResponseWriter.WriteHeader(status) }) {
		return errHandlerReturned
	}
	return nil
}

func (w *sentWriter) Write(b []byte) (n int, err error) {
	if !w.use(func() { n, err = w.ResponseWriter.Write(b) }) {
		return 0, errHandlerReturned
	}
	return n, err
}

// Flush sends the header (as the writer's own Flush does) and flushes when
// the writer can.
func (w *sentWriter) Flush() {
	w.use(func() {
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
	})
}

// Unwrap lets http.ResponseController reach the writer's other features.
func (w *sentWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type handlerProxy struct{ *Ref }

func (p handlerProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var sent func() bool
	var sw *sentWriter
	arg := w
	if rp, ok := w.(*responseProxy); ok {
		// Going home, where it is the original writer. Known gap: what
		// the home side writes to it directly is not seen here, so a
		// failure after such a write may still add a 502 (rare: a plugin
		// calling a host handler with the host's own writer).
		sent = rp.headerSent
	} else {
		sw = &sentWriter{ResponseWriter: w}
		sent, arg = sw.sent.Load, sw
	}
	err := p.Invoke("ServeHTTP", []any{arg, r})
	if sw != nil {
		sw.finish() // before this ServeHTTP answers or returns
	}
	switch {
	case err == nil:
	case r.Context().Err() != nil:
		// The client went away: the ordinary end of a request, nobody to
		// answer.
		p.conn.log.Debug("ServeHTTP ended: the client went away", "handler", p.static.String(), "error", err)
	default:
		p.LogFailure("ServeHTTP", err)
		if !sent() {
			// The detail (a panic's value, say) is for this side's log,
			// not for whoever sent the request.
			http.Error(w, "the plugin's handler failed", http.StatusBadGateway)
		}
	}
}

func init() {
	converters[requestType] = converter{wire: reflect.TypeFor[*httpRequestWire](), to: requestToWire, from: requestFromWire}
	adapt([][]string{{"WriteHeader", "Write", "Flush"}}, func(w http.ResponseWriter, _ int) responseWire { return responseAdapter{w} })
	RegisterInterface[http.ResponseWriter](func(r *Ref) http.ResponseWriter { return &responseProxy{Ref: r} })
	RegisterInterface[http.Handler](func(r *Ref) http.Handler { return handlerProxy{r} })
}
