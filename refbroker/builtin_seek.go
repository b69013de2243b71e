package refbroker

import (
	"fmt"
	"io"
	"reflect"
)

// Random access and seeking, built in as io.Reader is: io.ReaderAt,
// io.WriterAt, io.Seeker, io.ReadSeeker and io.ReadSeekCloser, so that a
// host can hand a plugin a file (an *os.File, a *bytes.Reader) for
// archive/zip, http.ServeContent or a decoder that seeks, and a plugin
// can return one.
//
// A ReaderAt crosses as a Reader does, with a method that returns the
// bytes read instead of filling a buffer sent along: readSpan(n, off).
// The proxy's ReadAt asks for at most streamChunk bytes a call, as
// several calls for a larger buffer, and keeps io.ReaderAt's promise that
// fewer bytes than asked come with an error. A ReadSeeker's reads cross
// as a Reader's (readAtMost, and io.Copy's fast way through WriteTo), its
// Seek as itself. On the owner's side a ReaderAt's reads, and a
// ReadSeeker's reads and seeks, run one at a time (wireAdapter.serial):
// a Read and a Seek racing would leave the offset to chance, and a peer
// asking for many reads at once gets one result held here at a time. A
// WriterAt and a lone Seeker cross as themselves; WriteAt of more than
// streamChunk bytes goes as several calls.

// readerAtWire is how an io.ReaderAt crosses.
type readerAtWire interface {
	ReadSpan(n int, off int64) ([]byte, error)
}

// readSeekerWire is how an io.ReadSeeker crosses.
type readSeekerWire interface {
	ReadAtMost(n int) ([]byte, error)
	Seek(offset int64, whence int) (int64, error)
}

// readSeekCloserWire is how an io.ReadSeekCloser crosses.
type readSeekCloserWire interface {
	ReadAtMost(n int) ([]byte, error)
	Seek(offset int64, whence int) (int64, error)
	Close() error
}

// readerAtAdapter serves an io.ReaderAt; max is as readerAdapter's.
type readerAtAdapter struct {
	ra  io.ReaderAt
	max int
}

func (a readerAtAdapter) ReadSpan(n int, off int64) ([]byte, error) {
	return serveReadAt("io.ReaderAt.ReadAt", n, a.max, a.ra, off)
}

// serveReadAt serves a ReadSpan of ra (the method named what) as
// serveRead does, and holds ra to io.ReaderAt's promise: fewer bytes than
// its buffer come with an error. So the proxy can tell a span cut short
// by this side's limit (fewer bytes than it asked for, no error: it asks
// again for the rest) from a ReaderAt that returned less and said nothing.
func serveReadAt(what string, n, max int, ra io.ReaderAt, off int64) ([]byte, error) {
	return serveRead(what, n, max, func(b []byte) (int, error) {
		k, err := ra.ReadAt(b, off)
		if err == nil && k >= 0 && k < len(b) {
			err = fmt.Errorf("refbroker: %s: the remote reader returned %d of %d bytes at offset %d without an error", what, k, len(b), off)
		}
		return k, err
	})
}

func (a readerAtAdapter) afterReply(_, outs []reflect.Value) { recycleRead(outs) }

type readSeekerAdapter struct {
	readerAdapter
	s io.Seeker
}

func (a readSeekerAdapter) Seek(offset int64, whence int) (int64, error) {
	return a.s.Seek(offset, whence)
}

type readSeekCloserAdapter struct {
	readSeekerAdapter
	c io.Closer
}

func (a readSeekCloserAdapter) Close() error { return a.c.Close() }

type readerAtProxy struct{ *Ref }

func (p readerAtProxy) ReadAt(b []byte, off int64) (int, error) { return remoteReadAt(p.Ref, b, off) }

// remoteReadAt fills b from the remote io.ReaderAt r at off, in calls of
// at most streamChunk bytes (less below a small MaxMessageSize: chunk). The
// owner may answer a call with fewer bytes than asked and no error (its
// own MaxMessageSize bounds one answer: serveRead); the next call asks for
// the rest.
func remoteReadAt(r *Ref, b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		asked := min(len(b)-n, r.conn.chunk())
		var data []byte
		err := r.Invoke("ReadSpan", []any{asked, off + int64(n)}, &data)
		if len(data) > asked { // a peer's answer, not to be trusted
			return n, tooMuchRead("io.ReaderAt.ReadAt", len(data), asked)
		}
		n += copy(b[n:], data)
		recycle(data) // copied out: nothing else holds it
		switch {
		case err != nil:
			return n, err
		case len(data) == 0:
			return n, fmt.Errorf("refbroker: io.ReaderAt.ReadAt: the remote reader returned 0 of %d bytes at offset %d without an error", asked, off+int64(n))
		}
	}
	return n, nil
}

type seekerProxy struct{ *Ref }

func (p seekerProxy) Seek(offset int64, whence int) (int64, error) {
	return remoteSeek(p.Ref, offset, whence)
}

func remoteSeek(r *Ref, offset int64, whence int) (int64, error) {
	var pos int64
	err := r.Invoke("Seek", []any{offset, whence}, &pos)
	if err == nil && pos < 0 { // a peer's number, not to be trusted: a size made of it must not be negative
		return 0, fmt.Errorf("refbroker: io.Seeker.Seek: the remote seeker returned offset %d and no error", pos)
	}
	return pos, err
}

type readSeekerProxy struct{ *Ref }

func (p readSeekerProxy) Read(b []byte) (int, error)         { return remoteRead(p.Ref, b) }
func (p readSeekerProxy) WriteTo(w io.Writer) (int64, error) { return remoteWriteTo(p.Ref, w) }
func (p readSeekerProxy) Seek(offset int64, whence int) (int64, error) {
	return remoteSeek(p.Ref, offset, whence)
}

type readSeekCloserProxy struct{ readSeekerProxy }

func (p readSeekCloserProxy) Close() error { return p.Invoke("Close", nil) }

type writerAtProxy struct{ *Ref }

// WriteAt writes b at off in calls of at most writeChunk bytes, stopping
// at the first that fails or writes less (a call refused as too large for
// the peer goes again as smaller ones, as remoteWrite's).
func (p writerAtProxy) WriteAt(b []byte, off int64) (int, error) {
	n := 0
	for {
		chunk := b[n:min(len(b), n+p.conn.writeChunk())]
		var k int
		err := p.Invoke("WriteAt", []any{chunk, off + int64(n)}, &k)
		if refusedAsTooLarge(err, k) && p.conn.shrinkWrites(len(chunk)) {
			continue
		}
		if k < 0 || k > len(chunk) { // a peer's answer, not to be trusted
			return n, fmt.Errorf("refbroker: io.WriterAt.WriteAt: the remote writer reported %d bytes written of %d", k, len(chunk))
		}
		n += k
		switch {
		case err != nil:
			return n, err
		case k < len(chunk):
			return n, io.ErrShortWrite
		case n == len(b):
			return n, nil
		}
	}
}

func init() {
	adapt([][]string{{"ReadSpan"}}, func(ra io.ReaderAt, max int) readerAtWire { return readerAtAdapter{ra, max} })
	adapt([][]string{{"ReadAtMost", "Seek"}}, func(rs io.ReadSeeker, max int) readSeekerWire {
		return readSeekerAdapter{readerAdapter{rs, max}, rs}
	})
	adapt([][]string{{"ReadAtMost", "Seek"}}, func(rsc io.ReadSeekCloser, max int) readSeekCloserWire {
		return readSeekCloserAdapter{readSeekerAdapter{readerAdapter{rsc, max}, rsc}, rsc}
	})
	RegisterInterface[io.ReaderAt](func(r *Ref) io.ReaderAt { return readerAtProxy{r} })
	RegisterInterface[io.WriterAt](func(r *Ref) io.WriterAt { return writerAtProxy{r} })
	RegisterInterface[io.Seeker](func(r *Ref) io.Seeker { return seekerProxy{r} })
	RegisterInterface[io.ReadSeeker](func(r *Ref) io.ReadSeeker { return readSeekerProxy{r} })
	RegisterInterface[io.ReadSeekCloser](func(r *Ref) io.ReadSeekCloser { return readSeekCloserProxy{readSeekerProxy{r}} })
}
