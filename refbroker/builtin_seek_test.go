package refbroker_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/refplug/refplug/refbroker"
)

// AtSource hands out io.ReaderAts.
type AtSource interface {
	Get(broken bool, n int) (io.ReaderAt, error)
	Seeker() (io.Seeker, error)
}

type atSourceProxy struct{ *refbroker.Ref }

func (p atSourceProxy) Get(broken bool, n int) (io.ReaderAt, error) {
	var r io.ReaderAt
	err := p.Invoke("Get", []any{broken, n}, &r)
	return r, err
}

func (p atSourceProxy) Seeker() (io.Seeker, error) {
	var s io.Seeker
	err := p.Invoke("Seeker", nil, &s)
	return s, err
}

func init() {
	refbroker.RegisterInterface[AtSource](func(r *refbroker.Ref) AtSource { return atSourceProxy{r} })
}

type atSource struct{}

func (atSource) Get(broken bool, n int) (io.ReaderAt, error) {
	if broken {
		return halfReaderAt{}, nil
	}
	return bytes.NewReader(pattern(n)), nil
}

func (atSource) Seeker() (io.Seeker, error) { return backwardsSeeker{}, nil }

// backwardsSeeker answers every Seek with an offset before the start and
// no error, as a broken or hostile peer might.
type backwardsSeeker struct{}

func (backwardsSeeker) Seek(int64, int) (int64, error) { return -42, nil }

// halfReaderAt breaks io.ReaderAt's promise: it reads half of what is
// asked and says nothing.
type halfReaderAt struct{}

func (halfReaderAt) ReadAt(p []byte, _ int64) (int, error) { return len(p) / 2, nil }

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 31)
	}
	return b
}

// TestRemoteReaderAt: a remote io.ReaderAt fills a buffer larger than one
// call carries in several, at the right offsets, and returns io.EOF with
// a short read at the end; one that reads less than asked without an
// error (breaking io.ReaderAt's promise) gives its caller an error, not a
// silent short read; and a remote Seek that returns an offset before the
// start without an error gives an error.
func TestRemoteReaderAt(t *testing.T) {
	client, _ := refbroker.NewPair(t, refbroker.Options{Roots: map[string]any{"src": atSource{}}}, refbroker.Options{})
	src, err := refbroker.Dispense[AtSource](client, "src")
	if err != nil {
		t.Fatal(err)
	}
	const size = 5<<19 + 11 // 2.5 MiB and a little: three calls of at most 1 MiB
	ra, err := src.Get(false, size)
	if err != nil {
		t.Fatal(err)
	}
	want := pattern(size)
	p := make([]byte, size-7)
	if n, err := ra.ReadAt(p, 7); n != len(p) || err != nil || !bytes.Equal(p, want[7:]) {
		t.Errorf("ReadAt(%d bytes, 7) = %d, %v; equal = %v", len(p), n, err, bytes.Equal(p, want[7:]))
	}
	p = make([]byte, 2<<20)
	if n, err := ra.ReadAt(p, size-(1<<20)); n != 1<<20 || err != io.EOF || !bytes.Equal(p[:n], want[size-(1<<20):]) {
		t.Errorf("ReadAt past the end = %d, %v; want %d, io.EOF", n, err, 1<<20)
	}
	broken, err := src.Get(true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := broken.ReadAt(make([]byte, 100), 0); n != 50 || err == nil || !strings.Contains(err.Error(), "50 of 100 bytes at offset 0 without an error") {
		t.Errorf("ReadAt from a ReaderAt that reads half = %d, %v; want 50 and an error saying so", n, err)
	}
	// A remote Seek that lands before the start and says nothing is an
	// error here: a size computed from it must not be negative.
	seeker, err := src.Seeker()
	if err != nil {
		t.Fatal(err)
	}
	if pos, err := seeker.Seek(0, io.SeekEnd); pos != 0 || err == nil || !strings.Contains(err.Error(), "offset -42 and no error") {
		t.Errorf("Seek answered -42 = %d, %v; want an error", pos, err)
	}
}
