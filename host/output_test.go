package host

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/internal/testutil"
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

// TestOutputSinkEndsAtTheFence: the copy of a plugin's output ends at the
// fence the plugin writes as it exits (all it wrote before is in), rather
// than reading on until go-plugin's connection ends: the stream below
// never ends, as a yamux stream does not until its session has shut down,
// and a read then can spin (RELIABILITY.md, Close).
func TestOutputSinkEndsAtTheFence(t *testing.T) {
	fence := gp.Fence(strings.Repeat("ab", 16))
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	var got bytes.Buffer
	sink := newOutputSink(&got, fence)
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(sink, &sizeReader{r: pr})
		copied <- err
	}()
	// The fence may come split across reads, with output before it.
	for _, part := range [][]byte{[]byte("last words\n"), fence[:5], fence[5:]} {
		if _, err := pw.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if err := testutil.Receive(t, copied, 10*time.Second, "the copy to end at the fence"); err != nil {
		t.Fatalf("io.Copy = %v", err)
	}
	testutil.Receive(t, sink.done, time.Second, "done to be closed")
	if got.String() != "last words\n" {
		t.Errorf("the sink got %q; want the output before the fence, without it", got.String())
	}
}

// TestPrintable: a plugin's stderr quoted in a start error keeps its
// text, tabs and non-ASCII letters, escapes control characters and bytes
// that are not UTF-8, and is cut at a character, never inside one.
func TestPrintable(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int
		want  string
	}{
		{"plain text\twith a tab, é and …", 100, "plain text\twith a tab, é and …"},
		{"\x1b[31mred\x1b[0m", 100, `\x1b[31mred\x1b[0m`},
		{"nul \x00, del \x7f, bell \a, cr \r", 100, `nul \x00, del \x7f, bell \x07, cr \x0d`},
		{"broken \xff\xfe and a real \uFFFD", 100, "broken \\xff\\xfe and a real \uFFFD"},
		{"next line\u0085, c1 \u009b", 100, `next line\x85, c1 \x9b`},
		{"ééé", 3, "éé…"}, // é is two bytes: the cut comes after the second
		{"abc", 3, "abc"},
	} {
		if got := printable(c.in, c.limit); got != c.want {
			t.Errorf("printable(%q, %d) = %q; want %q", c.in, c.limit, got, c.want)
		}
	}
}
