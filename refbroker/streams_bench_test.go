//go:build unix

package refbroker_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/refplug/refplug/internal/bench"
	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/refbroker"
)

// BenchmarkStreams: a megabyte through the built-in stream proxies and a
// method shaped as a read, between two Conns in one process on a unix
// socket pair with the buffers a plugin's asks for: where a copy or a
// fresh buffer per round trip would show (B/op), as refbench's bulk rows
// show it between processes.
func BenchmarkStreams(b *testing.B) {
	hostEnd, pluginEnd := refbroker.SocketConns(b, gp.SocketBuffer)
	plugin := refbroker.NewConn(pluginEnd, refbroker.Options{Roots: map[string]any{"streams": bench.StreamsImpl{}}})
	host := refbroker.NewConn(hostEnd, refbroker.Options{})
	b.Cleanup(func() {
		host.Close()
		plugin.Close()
	})
	s, err := refbroker.Dispense[bench.Streams](host, "streams")
	if err != nil {
		b.Fatal(err)
	}
	const size = 1 << 20
	mib := make([]byte, size)
	src := bytes.NewReader(mib)
	dst := &sink{buf: make([]byte, size)}
	for _, bc := range []struct {
		name string
		op   func() (int64, error)
	}{
		{"io.Copy from a passed reader", func() (int64, error) { src.Reset(mib); return s.Drain(src) }},
		{"io.Copy into a passed writer", func() (int64, error) { dst.n = 0; return s.Pour(dst, size) }},
		{"passed reader to passed writer", func() (int64, error) { src.Reset(mib); dst.n = 0; return s.Echo(dst, src) }},
		{"method shaped as a read", func() (int64, error) { n, err := s.ReadBack(mib); return int64(n), err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if n, err := bc.op(); err != nil || n != size {
					b.Fatalf("moved %d bytes of %d: %v", n, size, err)
				}
			}
		})
	}
}

// sink takes writes into a buffer it reuses.
type sink struct {
	buf []byte
	n   int
}

func (w *sink) Write(p []byte) (int, error) {
	if w.n+len(p) > len(w.buf) {
		return 0, io.ErrShortBuffer
	}
	w.n += copy(w.buf[w.n:], p)
	return len(p), nil
}
