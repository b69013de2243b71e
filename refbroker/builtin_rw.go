package refbroker

import (
	"io"
	"reflect"
)

// Duplex streams, built in as io.Reader and io.Writer are: io.ReadWriter
// and io.ReadWriteCloser, so that a host can hand a plugin a connection
// (a net.Conn is an io.ReadWriteCloser) to speak a protocol on. Reads
// cross as a Reader's (readAtMost, and io.Copy's fast way through
// WriteTo), writes as a Writer's (ReadFrom; a large Write as several).
// On the owner's side the reads run one at a time and the writes one at a
// time, but a read and a write may run at once: on a connection a Read
// waits for what the peer sends in answer to a Write.

// readWriterWire is how an io.ReadWriter crosses.
type readWriterWire interface {
	ReadAtMost(n int) ([]byte, error)
	Write(p []byte) (int, error)
}

// readWriteCloserWire is how an io.ReadWriteCloser crosses.
type readWriteCloserWire interface {
	ReadAtMost(n int) ([]byte, error)
	Write(p []byte) (int, error)
	Close() error
}

type readWriterAdapter struct {
	readerAdapter
	writerAdapter
}

// afterReply recycles a read's buffer, or the frame a write arrived in.
func (a readWriterAdapter) afterReply(args, outs []reflect.Value) {
	if len(args) == 1 && args[0].Kind() == reflect.Slice { // Write(p)
		a.writerAdapter.afterReply(args, outs)
		return
	}
	recycleRead(outs)
}

type readWriteCloserAdapter struct {
	readWriterAdapter
	c io.Closer
}

func (a readWriteCloserAdapter) Close() error { return a.c.Close() }

type readWriterProxy struct{ *Ref }

func (p readWriterProxy) Read(b []byte) (int, error)          { return remoteRead(p.Ref, b) }
func (p readWriterProxy) WriteTo(w io.Writer) (int64, error)  { return remoteWriteTo(p.Ref, w) }
func (p readWriterProxy) Write(b []byte) (int, error)         { return remoteWrite(p.Ref, b) }
func (p readWriterProxy) ReadFrom(r io.Reader) (int64, error) { return remoteReadFrom(p.Ref, r) }

type readWriteCloserProxy struct{ readWriterProxy }

func (p readWriteCloserProxy) Close() error { return p.Invoke("Close", nil) }

func init() {
	duplex := [][]string{{"ReadAtMost"}, {"Write"}}
	adapt(duplex, func(rw io.ReadWriter, max int) readWriterWire {
		return readWriterAdapter{readerAdapter{rw, max}, writerAdapter{rw}}
	})
	adapt(duplex, func(rwc io.ReadWriteCloser, max int) readWriteCloserWire {
		return readWriteCloserAdapter{readWriterAdapter{readerAdapter{rwc, max}, writerAdapter{rwc}}, rwc}
	})
	RegisterInterface[io.ReadWriter](func(r *Ref) io.ReadWriter { return readWriterProxy{r} })
	RegisterInterface[io.ReadWriteCloser](func(r *Ref) io.ReadWriteCloser { return readWriteCloserProxy{readWriterProxy{r}} })
}
