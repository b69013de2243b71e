package refbroker

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/refplug/refplug/internal/testutil"
)

// memFile is a file in memory for the random-access proxies: ReadAt,
// WriteAt (growing it), and Read and Seek through its own offset.
type memFile struct {
	mu   sync.Mutex
	data []byte
	off  int64
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readAt(p, off)
}

func (f *memFile) readAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(f.data)) {
		f.data = append(f.data, make([]byte, end-int64(len(f.data)))...)
	}
	return copy(f.data[off:], p), nil
}

func (f *memFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.readAt(p, f.off)
	f.off += int64(n)
	return n, err
}

func (f *memFile) Seek(off int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekCurrent:
		off += f.off
	case io.SeekEnd:
		off += int64(len(f.data))
	}
	f.off = off
	return off, nil
}

// TestBuiltinsUnderASmallMessageLimit: with a MaxMessageSize far below the
// megabyte the built-in streams move per round trip, on the owner's side,
// the caller's or both, an io.ReaderAt read through a section, a ReadAt
// and a WriteAt of 2 MiB, an io.ReadSeeker sought and read, and io.Copy
// both ways each move every byte: reads ask for, and answer with, what
// their side's limit allows, and a write the peer refuses as too large
// goes again smaller.
func TestBuiltinsUnderASmallMessageLimit(t *testing.T) {
	const limit = 64<<10 + 7
	data := pattern(3<<20 + 11)
	for _, side := range []string{"owner", "caller", "both"} {
		t.Run(side, func(t *testing.T) {
			var owner, caller Options
			if side != "caller" {
				owner.MaxMessageSize = limit
			}
			if side != "owner" {
				caller.MaxMessageSize = limit
			}
			f := &memFile{data: bytes.Clone(data)}
			owner.Roots = map[string]any{"f": f}
			c, _ := newPair(t, owner, caller)
			ra, err := Dispense[io.ReaderAt](c, "f")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(io.NewSectionReader(ra, 5, int64(len(data)-5))); err != nil || !bytes.Equal(got, data[5:]) {
				t.Errorf("a section read through ReadAt: %d bytes, %v; want %d", len(got), err, len(data)-5)
			}
			p := make([]byte, 2<<20)
			if n, err := ra.ReadAt(p, 100); n != len(p) || err != nil || !bytes.Equal(p, data[100:100+len(p)]) {
				t.Errorf("ReadAt(2 MiB, 100) = %d, %v; want all of it", n, err)
			}
			wa, err := Dispense[io.WriterAt](c, "f")
			if err != nil {
				t.Fatal(err)
			}
			fill := bytes.Repeat([]byte("w"), 2<<20)
			if n, err := wa.WriteAt(fill, 7); n != len(fill) || err != nil {
				t.Errorf("WriteAt(2 MiB, 7) = %d, %v; want all of it", n, err)
			}
			f.mu.Lock()
			if !bytes.Equal(f.data[7:7+len(fill)], fill) || !bytes.Equal(f.data[7+len(fill):], data[7+len(fill):]) {
				t.Error("the owner's file does not hold the write, or lost what follows it")
			}
			want := bytes.Clone(f.data)
			f.mu.Unlock()
			rs, err := Dispense[io.ReadSeeker](c, "f")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rs.Seek(1<<20, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if n, err := io.Copy(&out, rs); n != int64(len(want)-1<<20) || err != nil || !bytes.Equal(out.Bytes(), want[1<<20:]) {
				t.Errorf("io.Copy from the sought reader = %d, %v; want the %d bytes after 1 MiB", n, err, len(want)-1<<20)
			}
		})
	}
}

// TestWritesShrinkToThePeersLimit: a writer proxy whose peer refuses a
// write as too large (its MaxMessageSize is smaller than this side's)
// writes it again in smaller parts, every byte once and in order, and
// goes on with the size that was taken.
func TestWritesShrinkToThePeersLimit(t *testing.T) {
	var sink testutil.Buffer
	c, _ := newPair(t, Options{MaxMessageSize: 100 << 10, Roots: map[string]any{"w": &sink}}, Options{})
	w, err := Dispense[io.Writer](c, "w")
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(5<<20 + 3)
	for i, part := range [][]byte{data[:3<<20], data[3<<20:]} {
		if n, err := w.Write(part); n != len(part) || err != nil {
			t.Fatalf("Write %d of %d bytes = %d, %v", i+1, len(part), n, err)
		}
	}
	if got := sink.String(); got != string(data) {
		t.Errorf("the peer's writer got %d bytes, not the %d written in order", len(got), len(data))
	}
	if got := c.writeChunk(); got > 100<<10 || got < (100<<10)/4 {
		t.Errorf("writes go on in parts of %d bytes; want at most the peer's 100 KiB and not far below", got)
	}
}
