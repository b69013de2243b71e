package scenario

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/refplug/refplug/testdata/contract"
)

// FilledBuffers: a contract's own file-like object (contract.Blob, which
// embeds io.ReadCloser and io.ReaderAt) fills the caller's buffer as it
// would in process: p[:n] holds what Read, ReadAt and ReadChunk read,
// partial reads and io.EOF included, for small and multi-megabyte
// buffers; what lies past n, and a buffer given to a method that is not a
// read (Scribble), stay as the caller left them.
func FilledBuffers(t *testing.T, svc contract.Service) {
	const size = 1000
	want := contract.Pattern(size)
	b, err := svc.OpenBlob(size)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.Size(); err != nil || n != size {
		t.Fatalf("Size = %d, %v; want %d", n, err, size)
	}
	p := filler(300)
	if n, err := b.Read(p); err != nil || n != 300 || !bytes.Equal(p, want[:300]) {
		t.Fatalf("Read(300 bytes) = %d, %v; equal to the blob's first 300 = %v", n, err, bytes.Equal(p, want[:300]))
	}
	rest, err := io.ReadAll(b) // Reads into growing buffers, until io.EOF
	if err != nil || !bytes.Equal(rest, want[300:]) {
		t.Errorf("io.ReadAll after it: %d bytes, %v; equal to the rest = %v", len(rest), err, bytes.Equal(rest, want[300:]))
	}
	if n, err := b.Read(filler(10)); n != 0 || err != io.EOF {
		t.Errorf("Read at the end = %d, %v; want 0, io.EOF", n, err)
	}

	p = filler(100)
	n, err := b.ReadAt(p, size-50) // a short read: 50 bytes and io.EOF
	if n != 50 || err != io.EOF || !bytes.Equal(p[:50], want[size-50:]) {
		t.Errorf("ReadAt(100 bytes, %d) = %d, %v; want 50, io.EOF and the blob's last 50 (equal = %v)", size-50, n, err, bytes.Equal(p[:50], want[size-50:]))
	}
	if !bytes.Equal(p[50:], filler(100)[50:]) {
		t.Errorf("ReadAt changed the buffer past the 50 bytes it read")
	}
	if n, err := b.ReadAt(nil, 0); n != 0 || err != nil {
		t.Errorf("ReadAt(nil, 0) = %d, %v; want 0, nil", n, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = filler(10)
	if n, err := b.ReadChunk(ctx, p); n != 0 || !errors.Is(err, context.Canceled) || !bytes.Equal(p, filler(10)) {
		t.Errorf("ReadChunk with a cancelled context = %d, %v (buffer kept: %v); want 0, context.Canceled, the buffer as it was", n, err, bytes.Equal(p, filler(10)))
	}
	p = filler(64)
	if n, err := b.Scribble(p); n != 64 || err != nil || !bytes.Equal(p, filler(64)) {
		t.Errorf("Scribble = %d, %v; the caller's buffer kept = %v, want it kept (arguments cross by value)", n, err, bytes.Equal(p, filler(64)))
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	// Megabytes, which cross outside the message buffers (writev), both
	// ways; and io.Copy, which reads through Read in 32 KiB buffers.
	const big = 3 << 20
	wantBig := contract.Pattern(big)
	bb, err := svc.OpenBlob(big)
	if err != nil {
		t.Fatal(err)
	}
	p = filler(2 << 20)
	if n, err := bb.ReadAt(p, 1<<20); n != len(p) || err != nil || !bytes.Equal(p, wantBig[1<<20:]) {
		t.Errorf("ReadAt(2 MiB, 1 MiB) = %d, %v; equal = %v", n, err, bytes.Equal(p, wantBig[1<<20:]))
	}
	var out bytes.Buffer
	if n, err := io.Copy(&out, onlyRead{bb}); n != big || err != nil || !bytes.Equal(out.Bytes(), wantBig) {
		t.Errorf("io.Copy of the blob = %d, %v; equal = %v", n, err, bytes.Equal(out.Bytes(), wantBig))
	}

	// Megabyte reads from many goroutines at once, each checked: the
	// callee reuses a read's buffer for the next message once its return
	// is written, which must never let one read's bytes into another's.
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 1<<20)
			for i := range 5 {
				off := int64(g*4099 + i*65537)
				n, err := bb.ReadAt(p, off)
				if n != len(p) || err != nil || !bytes.Equal(p, wantBig[off:off+int64(len(p))]) {
					t.Errorf("concurrent ReadAt(1 MiB, %d) = %d, %v; equal = %v", off, n, err, bytes.Equal(p, wantBig[off:off+int64(len(p))]))
					return
				}
			}
		}()
	}
	wg.Wait()
}

// filler is n bytes of 0xAA, what a caller's buffer held before a call.
func filler(n int) []byte { return bytes.Repeat([]byte{0xAA}, n) }

// onlyRead hides all but Read, so that io.Copy reads into its buffer.
type onlyRead struct{ io.Reader }
