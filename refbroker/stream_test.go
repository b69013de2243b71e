package refbroker

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// pieces is a reader that returns at most size bytes per Read, counting
// its Reads, and fails with err (after EOF's place) if err is set.
type pieces struct {
	data  []byte
	size  int
	reads int
	err   error
}

func (p *pieces) Read(b []byte) (int, error) {
	p.reads++
	if len(p.data) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), p.size)], p.data)
	p.data = p.data[n:]
	return n, nil
}

// limitedWriter takes limit bytes, then fails with errFull.
type limitedWriter struct {
	bytes.Buffer
	limit  int
	writes []int
}

var errFull = errors.New("writer full")

func (w *limitedWriter) Write(b []byte) (int, error) {
	w.writes = append(w.writes, len(b))
	room := w.limit - w.Len()
	if len(b) <= room {
		return w.Buffer.Write(b)
	}
	w.Buffer.Write(b[:room])
	return room, errFull
}

// streamer hands out a reader and a writer of the serving side, which
// cross as io.Reader and io.Writer.
type streamer interface {
	Source() (io.Reader, error)
	Sink() (io.Writer, error)
	Chunk(n, seed int) ([]byte, error)
	Two(n int) ([]byte, []byte, error)
}

type streamerProxy struct{ *Ref }

func (p streamerProxy) Source() (io.Reader, error) {
	var r io.Reader
	err := p.Invoke("Source", nil, &r)
	return r, err
}

func (p streamerProxy) Sink() (io.Writer, error) {
	var w io.Writer
	err := p.Invoke("Sink", nil, &w)
	return w, err
}

func (p streamerProxy) Chunk(n, seed int) ([]byte, error) {
	var b []byte
	err := p.Invoke("Chunk", []any{n, seed}, &b)
	return b, err
}

func (p streamerProxy) Two(n int) ([]byte, []byte, error) {
	var a, b []byte
	err := p.Invoke("Two", []any{n}, &a, &b)
	return a, b, err
}

func init() { RegisterInterface[streamer](func(r *Ref) streamer { return streamerProxy{r} }) }

type streams struct {
	r io.Reader
	w io.Writer
}

func (s streams) Source() (io.Reader, error) { return s.r, nil }
func (s streams) Sink() (io.Writer, error)   { return s.w, nil }
func (s streams) Two(n int) ([]byte, []byte, error) {
	a, _ := s.Chunk(n, 1)
	b, _ := s.Chunk(n, 2)
	return a, b, nil
}

func (s streams) Chunk(n, seed int) ([]byte, error) {
	b := pattern(n)
	for i := range b {
		b[i] += byte(seed)
	}
	return b, nil
}

// remoteReader serves r on one side of a pair and returns its proxy on
// the other.
func remoteReader(t *testing.T, r io.Reader) io.Reader {
	t.Helper()
	client, _ := testPair(t, map[string]any{"s": streams{r: r}})
	s, err := Dispense[streamer](client, "s")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Source()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// remoteWriter is remoteReader for a writer, with opts on both sides.
func remoteWriter(t *testing.T, w io.Writer, opts Options) io.Writer {
	t.Helper()
	server := opts
	server.Roots = map[string]any{"s": streams{w: w}}
	client, _ := newPair(t, server, opts)
	s, err := Dispense[streamer](client, "s")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Sink()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestReaderProxyWriteTo: io.Copy from a remote reader moves everything in
// order through WriteTo, each round trip one Read of the owner's reader
// (small pieces stay small), stops at the destination's failure with the
// count of what it took, and returns the source's error.
func TestReaderProxyWriteTo(t *testing.T) {
	data := pattern(3*streamChunk + 12345)
	src := &pieces{data: data, size: 1 << 30}
	r := remoteReader(t, src)
	if _, ok := r.(io.WriterTo); !ok {
		t.Fatal("a reader proxy is not an io.WriterTo")
	}
	var out bytes.Buffer
	if n, err := io.Copy(&out, r); err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("io.Copy = %d, %v; equal %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	if src.reads != 5 { // four chunks, then EOF
		t.Errorf("the source was read %d times; want 5 (one Read per chunk, then EOF)", src.reads)
	}

	src2 := &pieces{data: pattern(1000), size: 10, err: errors.New("disk on fire")}
	r2 := remoteReader(t, src2)
	out.Reset()
	n, err := io.Copy(&out, r2)
	if n != 1000 || err == nil || !strings.Contains(err.Error(), "disk on fire") || !bytes.Equal(out.Bytes(), pattern(1000)) {
		t.Errorf("a failing source: io.Copy = %d, %v; want 1000 bytes, then its error", n, err)
	}
	if src2.reads != 101 {
		t.Errorf("small pieces: %d Reads; want 101 (each Read's bytes delivered as they are)", src2.reads)
	}

	src3 := &pieces{data: pattern(3 * streamChunk), size: 1 << 30}
	r3 := remoteReader(t, src3)
	dst := &limitedWriter{limit: streamChunk + 5}
	n, err = io.Copy(dst, r3)
	if n != int64(streamChunk+5) || !errors.Is(err, errFull) {
		t.Errorf("a failing destination: io.Copy = %d, %v; want %d, errFull", n, err, streamChunk+5)
	}
	if src3.reads != 2 {
		t.Errorf("the source was read %d times before the copy stopped; want 2 (no read ahead)", src3.reads)
	}
}

// TestWriterProxyReadFromAndWrite: io.Copy into a remote writer goes
// through ReadFrom in chunks, a Write larger than a chunk goes as several
// (so no Write exceeds the message limit), and both stop at the remote
// writer's failure, counting what it took.
func TestWriterProxyReadFromAndWrite(t *testing.T) {
	dst := &limitedWriter{limit: 1 << 30}
	w := remoteWriter(t, dst, Options{MaxMessageSize: 2 * streamChunk})
	if _, ok := w.(io.ReaderFrom); !ok {
		t.Fatal("a writer proxy is not an io.ReaderFrom")
	}
	data := pattern(5*streamChunk + 7) // over the message limit in one Write
	if n, err := w.Write(data); err != nil || n != len(data) || !bytes.Equal(dst.Bytes(), data) {
		t.Errorf("Write of %d bytes = %d, %v", len(data), n, err)
	}
	for _, n := range dst.writes {
		if n > streamChunk {
			t.Errorf("the remote writer got a Write of %d bytes; want at most %d", n, streamChunk)
		}
	}
	dst.Reset()
	dst.writes = nil
	src := &pieces{data: data, size: 1000}
	if n, err := io.Copy(w, src); err != nil || n != int64(len(data)) || !bytes.Equal(dst.Bytes(), data) {
		t.Errorf("io.Copy through ReadFrom = %d, %v", n, err)
	}

	dst.Reset()
	dst.limit = streamChunk + 3
	if n, err := w.Write(data); n != streamChunk+3 || err == nil || !strings.Contains(err.Error(), errFull.Error()) {
		t.Errorf("Write into a writer that fills up = %d, %v; want %d, errFull", n, err, streamChunk+3)
	}
	dst.Reset()
	src = &pieces{data: data, size: 1 << 30}
	if n, err := io.Copy(w, src); n != streamChunk+3 || err == nil || !strings.Contains(err.Error(), errFull.Error()) {
		t.Errorf("io.Copy into a writer that fills up = %d, %v; want %d, errFull", n, err, streamChunk+3)
	}
	if src.reads != 2 {
		t.Errorf("the source was read %d times; want 2 (it stops at the failed Write)", src.reads)
	}
}

// overclaiming says it wrote more than it was given.
type overclaiming struct{}

func (overclaiming) Write(b []byte) (int, error) { return len(b) + 1, nil }

// TestWriterProxyDistrustsCounts: a remote writer's count beyond what it
// was given is an error, not a number passed on.
func TestWriterProxyDistrustsCounts(t *testing.T) {
	w := remoteWriter(t, overclaiming{}, Options{})
	if n, err := w.Write([]byte("abc")); err == nil || n > 3 {
		t.Errorf("Write = %d, %v; want an error and at most 3", n, err)
	}
}

// TestLargeBytesStayIntact: large byte slices handed over without a copy
// (sharing the frame they arrived in) are not overwritten by later
// messages, of any size, nor by appends to one another.
func TestLargeBytesStayIntact(t *testing.T) {
	client, _ := testPair(t, map[string]any{"s": streams{}})
	s, err := Dispense[streamer](client, "s")
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{bigBytes, 3 * bigBytes, bigBytes - 1, 2 * streamChunk, bigBytes, 100, streamChunk}
	var got [][]byte
	for i, n := range sizes {
		b, err := s.Chunk(n, i)
		if err != nil || len(b) != n {
			t.Fatalf("Chunk(%d) = %d bytes, %v", n, len(b), err)
		}
		got = append(got, b)
	}
	for i := range got { // appending to one result changes no other
		got[i] = append(got[i], make([]byte, 8<<10)...)
	}
	for i, n := range sizes {
		want, _ := streams{}.Chunk(n, i)
		if !bytes.Equal(got[i][:n], want) {
			t.Errorf("the %d-byte result of call %d changed after later calls and appends", n, i)
		}
	}
	a, b, err := s.Two(2 * bigBytes) // two large slices in one message
	if err != nil {
		t.Fatal(err)
	}
	a = append(a, make([]byte, 8<<10)...)
	wantA, _ := streams{}.Chunk(2*bigBytes, 1)
	wantB, _ := streams{}.Chunk(2*bigBytes, 2)
	if !bytes.Equal(a[:2*bigBytes], wantA) || !bytes.Equal(b, wantB) {
		t.Error("appending to the first of two large results in one message changed the second")
	}
}

// rawReader is the reader's wire method, as a peer may serve it.
type rawReader interface {
	ReadAtMost(n int) ([]byte, error)
}

type rawReaderProxy struct{ *Ref }

func (p rawReaderProxy) ReadAtMost(n int) ([]byte, error) {
	var b []byte
	err := p.Invoke("ReadAtMost", []any{n}, &b)
	return b, err
}

func init() { RegisterInterface[rawReader](func(r *Ref) rawReader { return rawReaderProxy{r} }) }

// greedy answers every read with more than was asked.
type greedy struct{}

func (greedy) ReadAtMost(n int) ([]byte, error) { return make([]byte, n+10), nil }

// TestReaderProxyDistrustsLengths: a peer that answers a read with more
// bytes than were asked gets an error, not a silently cut read.
func TestReaderProxyDistrustsLengths(t *testing.T) {
	client, _ := testPair(t, map[string]any{"r": greedy{}})
	raw, err := Dispense[rawReader](client, "r")
	if err != nil {
		t.Fatal(err)
	}
	r := readerProxy{raw.(rawReaderProxy).Ref}
	if n, err := r.Read(make([]byte, 5)); err == nil || !strings.Contains(err.Error(), "returned 15 bytes for a read of 5") {
		t.Errorf("Read = %d, %v; want the overlong answer refused", n, err)
	}
	if n, err := r.WriteTo(io.Discard); err == nil || n != 0 {
		t.Errorf("WriteTo = %d, %v; want the overlong answer refused", n, err)
	}
}

// TestReadFromReusesItsBuffer: io.Copy into a remote writer from a reader
// that is not an io.WriterTo (so through the proxy's ReadFrom) takes its
// megabyte buffer from the pool, not freshly for each copy.
func TestReadFromReusesItsBuffer(t *testing.T) {
	dst := &limitedWriter{limit: 1 << 30}
	w := remoteWriter(t, dst, Options{})
	copyOnce := func() {
		if n, err := io.Copy(w, &pieces{data: []byte("a few bytes"), size: 100}); err != nil || n != 11 {
			t.Fatalf("io.Copy = %d, %v", n, err)
		}
	}
	copyOnce()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const copies = 50
	for range copies {
		copyOnce()
	}
	runtime.ReadMemStats(&after)
	// Under the race detector sync.Pool drops a quarter of what it is
	// given, on purpose: about 12 of the 50 copies then make a buffer.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > copies/2*streamChunk {
		t.Errorf("%d copies of 11 bytes allocated %d MiB; want the buffer reused (a fresh one each is %d MiB)", copies, grew>>20, copies*streamChunk>>20)
	}
	if dst.Len() != 11*(copies+1) {
		t.Errorf("the remote writer got %d bytes; want %d", dst.Len(), 11*(copies+1))
	}
}
