package bench

import (
	"io"
)

// Streams is measured against the machine, not against go-plugin glue:
// bulk data through an io.Reader and an io.Writer passed to the plugin,
// as plugins that process files or streams take them.
type Streams interface {
	// Drain copies r to io.Discard until EOF, as a plugin consuming an
	// input stream does, and returns how many bytes it read.
	Drain(r io.Reader) (int64, error)
	// Pour copies n bytes into w, as a plugin producing output does.
	Pour(w io.Writer, n int64) (int64, error)
	// Echo copies r into w until EOF, as a plugin transforming a
	// caller's data does, and returns how many bytes it copied.
	Echo(w io.Writer, r io.Reader) (int64, error)
	// ReadBack is shaped as a read, so p comes back filled (here with
	// what it held): a megabyte in and out into the caller's own buffer.
	ReadBack(p []byte) (int, error)
}

// StreamsImpl is the plugin's implementation.
type StreamsImpl struct{}

func (StreamsImpl) Drain(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }

func (StreamsImpl) Pour(w io.Writer, n int64) (int64, error) {
	return io.Copy(w, io.LimitReader(Zeros{}, n))
}

func (StreamsImpl) Echo(w io.Writer, r io.Reader) (int64, error) { return io.Copy(w, r) }

func (StreamsImpl) ReadBack(p []byte) (int, error) { return len(p), nil }

// Zeros reads zeros, endlessly.
type Zeros struct{}

func (Zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
