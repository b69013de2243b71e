package host

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// sizeReader hands out its data in Reads, recording each buffer's size.
type sizeReader struct {
	r     io.Reader
	sizes []int
}

func (s *sizeReader) Read(p []byte) (int, error) {
	s.sizes = append(s.sizes, len(p))
	return s.r.Read(p)
}

type failingWriter struct{ n int }

func (w failingWriter) Write(p []byte) (int, error) { return w.n, errors.New("disk full") }

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

type lyingWriter struct{}

func (lyingWriter) Write(p []byte) (int, error) { return len(p) + 1, nil }

// TestOutputSink: go-plugin's io.Copy of a plugin's output stream goes
// through outputSink's ReadFrom, which reads into outputBuffer bytes, not
// io.Copy's 32 KiB, and copies as io.Copy would: everything until EOF,
// stopping at the first failed or short write.
func TestOutputSink(t *testing.T) {
	data := strings.Repeat("a line of the plugin's output\n", 1000) // ~30 KiB
	var got bytes.Buffer
	src := &sizeReader{r: strings.NewReader(data)}
	n, err := io.Copy(newOutputSink(&got, nil), src)
	if err != nil || n != int64(len(data)) || got.String() != data {
		t.Fatalf("io.Copy = %d, %v; copied %d bytes of %d", n, err, got.Len(), len(data))
	}
	for _, size := range src.sizes {
		if size != outputBuffer {
			t.Fatalf("Read was given %d bytes; want outputBuffer (%d): io.Copy's own buffer was used", size, outputBuffer)
		}
	}
	for _, tc := range []struct {
		name string
		w    io.Writer
		want string
	}{
		{"failing", failingWriter{3}, "disk full"},
		{"short", shortWriter{}, io.ErrShortWrite.Error()},
		{"lying", lyingWriter{}, "reported"},
	} {
		n, err := io.Copy(newOutputSink(tc.w, nil), &sizeReader{r: strings.NewReader(data)}) // no WriteTo, as go-plugin's stream
		if err == nil || !strings.Contains(err.Error(), tc.want) || n > int64(outputBuffer) {
			t.Errorf("%s writer: io.Copy = %d, %v; want an error with %q after one buffer at most", tc.name, n, err, tc.want)
		}
	}
}
