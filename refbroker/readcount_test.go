package refbroker_test

import (
	"io"
	"strings"
	"testing"

	"github.com/refplug/refplug/refbroker"
)

// Chunks is a contract's own reader, whose Read fills the caller's buffer
// (a method shaped as a read).
type Chunks interface {
	Read(p []byte) (int, error)
}

type chunksProxy struct{ *refbroker.Ref }

func (p chunksProxy) Read(b []byte) (int, error) {
	var n int
	err := p.Invoke("Read", []any{b}, &n)
	return n, err
}

func init() {
	refbroker.RegisterInterface[Chunks](func(r *refbroker.Ref) Chunks { return chunksProxy{r} })
}

// miscounting reads fill p but return a count of their own, as a broken
// or hostile plugin's Read might.
type miscounting struct{ n int }

func (m miscounting) Read(p []byte) (int, error) {
	copy(p, "abcdef")
	return m.n, nil
}

// TestReadCountFromAPeer: a read whose count is not what it filled — past
// the caller's buffer, or below zero — gives the caller an error, not a
// count that io.ReadAll or io.ReadFull would slice past the buffer with
// and panic; an honest short read comes as it was.
func TestReadCountFromAPeer(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string // "" for no error
	}{
		{3, ""},
		{100, "returned 100, but 6 bytes were filled"},
		{-5, "returned -5, but 0 bytes were filled"},
	} {
		client, _ := refbroker.NewPair(t, refbroker.Options{Roots: map[string]any{"r": miscounting{tc.n}}}, refbroker.Options{})
		r, err := refbroker.Dispense[Chunks](client, "r")
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 6)
		n, err := r.Read(p)
		switch {
		case tc.want == "" && (err != nil || n != tc.n || string(p[:n]) != "abc"):
			t.Errorf("a read of %d: %d, %v, %q", tc.n, n, err, p[:n])
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("a read returning %d for 6 bytes filled = %d, %v; want an error with %q", tc.n, n, err, tc.want)
		}
		if tc.want != "" {
			if _, err := io.ReadAll(r); err == nil {
				t.Errorf("io.ReadAll through a read returning %d: no error", tc.n)
			}
		}
	}
}
