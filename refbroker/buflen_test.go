package refbroker_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
)

// ScratchReader reports, in what it reads, whether its buffer arrived
// zeroed: io.Reader's Read and io.ReaderAt's ReadAt, and a Read… method
// of a contract's own.
type ScratchReader interface {
	Read(p []byte) (int, error)
	ReadAt(p []byte, off int64) (int, error)
	ReadChunk(ctx context.Context, p []byte) (int, error)
}

type scratchReaderProxy struct{ *refbroker.Ref }

func (p scratchReaderProxy) Read(b []byte) (int, error) {
	var n int
	err := p.Invoke("Read", []any{b}, &n)
	return n, err
}

func (p scratchReaderProxy) ReadAt(b []byte, off int64) (int, error) {
	var n int
	err := p.Invoke("ReadAt", []any{b, off}, &n)
	return n, err
}

func (p scratchReaderProxy) ReadChunk(ctx context.Context, b []byte) (int, error) {
	var n int
	err := p.Invoke("ReadChunk", []any{ctx, b}, &n)
	return n, err
}

func init() {
	refbroker.RegisterInterface[ScratchReader](func(r *refbroker.Ref) ScratchReader { return scratchReaderProxy{r} })
}

type scratchReader struct{}

// fill fills the first half of p with 'z' if p arrived zeroed, else 'n'.
func fill(p []byte) (int, error) {
	b := byte('z')
	if slices.ContainsFunc(p, func(c byte) bool { return c != 0 }) {
		b = 'n'
	}
	n := len(p) / 2
	copy(p, bytes.Repeat([]byte{b}, n))
	return n, nil
}

func (scratchReader) Read(p []byte) (int, error)                         { return fill(p) }
func (scratchReader) ReadAt(p []byte, _ int64) (int, error)              { return fill(p) }
func (scratchReader) ReadChunk(_ context.Context, p []byte) (int, error) { return fill(p) }

// TestReadSendsItsLength: io.Reader's Read and io.ReaderAt's ReadAt take
// their buffer as scratch, so only its length crosses: the callee reads
// into a zeroed buffer however dirty the caller's is, and the caller gets
// p[:n] filled and p[n:] as it left it. A Read… method of a contract's
// own (ReadChunk) gets the buffer's bytes, as before. Small and large
// buffers (a large one is a pooled frame on the callee's side: zeroed
// too, after carrying other messages).
func TestReadSendsItsLength(t *testing.T) {
	logger := testutil.Logger(t, "test")
	h, _ := refbroker.NewPair(t,
		refbroker.Options{Logger: logger.Named("plugin"), Roots: map[string]any{"r": scratchReader{}}},
		refbroker.Options{Logger: logger.Named("host")})
	r, err := refbroker.Dispense[ScratchReader](h, "r") // the peer's hello is read by its answer
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{16, 3 << 20} {
		for _, tc := range []struct {
			name string
			read func(p []byte) (int, error)
			want byte
		}{
			{"Read", r.Read, 'z'},
			{"ReadAt", func(p []byte) (int, error) { return r.ReadAt(p, 7) }, 'z'},
			{"ReadChunk", func(p []byte) (int, error) { return r.ReadChunk(context.Background(), p) }, 'n'},
		} {
			for range 3 { // large frames go round the pool
				p := bytes.Repeat([]byte{0xAB}, size)
				n, err := tc.read(p)
				if err != nil || n != size/2 {
					t.Fatalf("%s of %d bytes = %d, %v", tc.name, size, n, err)
				}
				if !bytes.Equal(p[:n], bytes.Repeat([]byte{tc.want}, n)) {
					t.Fatalf("%s of %d bytes: the callee saw its buffer %s; want %q", tc.name, size, map[byte]string{'z': "zeroed", 'n': "with the caller's bytes"}[p[0]], tc.want)
				}
				if !bytes.Equal(p[n:], bytes.Repeat([]byte{0xAB}, size-n)) {
					t.Fatalf("%s of %d bytes: p[n:] was changed", tc.name, size)
				}
			}
		}
	}
}
