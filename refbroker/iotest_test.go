package refbroker_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// TestReadersPassIotest: readers handed across pass testing/iotest's own
// check of the io.Reader contract — a zero-length Read, reads of one to
// three bytes to the end, then (0, io.EOF) — and, for a proxy that has
// Seek and ReadAt, of theirs (seeking relative to the current offset and
// from the end, ReadAt at every offset without moving the Read offset).
func TestReadersPassIotest(t *testing.T) {
	h, _ := pair(t)
	svc, err := refbroker.Dispense[contract.Service](h, "svc")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 1000, 5000} {
		want := contract.Pattern(n)
		for name, open := range map[string]func() (io.ReadCloser, error){
			"io.ReadCloser":     func() (io.ReadCloser, error) { return svc.Producer(n) },
			"io.ReadSeekCloser": func() (io.ReadCloser, error) { return svc.OpenSeekable(n) },
			"Blob (Read, ReadAt)": func() (io.ReadCloser, error) {
				b, err := svc.OpenBlob(n)
				return b, err
			},
		} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				r, err := open()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if err := iotest.TestReader(r, want); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// failingWriter takes limit bytes, then fails.
type failingWriter struct {
	got   []byte
	limit int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	n := min(len(p), w.limit-len(w.got))
	w.got = append(w.got, p[:n]...)
	if n < len(p) {
		return n, errors.New("disk full")
	}
	return n, nil
}

// TestCopyFromAContractReader: refgen gives the proxy of a contract's own
// reader (Blob) a WriteTo, so io.Copy from it reads a megabyte a round
// trip — even into io.Discard, whose ReadFrom reads 8 KiB at a time —
// with io.Copy's results: every byte, a destination's failure and the
// count it took.
func TestCopyFromAContractReader(t *testing.T) {
	h, _ := pair(t)
	svc, err := refbroker.Dispense[contract.Service](h, "svc")
	if err != nil {
		t.Fatal(err)
	}
	const n = 4<<20 + 123
	b, err := svc.OpenBlob(n)
	if err != nil {
		t.Fatal(err)
	}
	before := h.Stats().CallsMade
	var dst bytes.Buffer
	if got, err := io.Copy(&dst, b); err != nil || got != n || !bytes.Equal(dst.Bytes(), contract.Pattern(n)) {
		t.Fatalf("io.Copy = %d, %v (equal: %v); want the %d bytes", got, err, bytes.Equal(dst.Bytes(), contract.Pattern(n)), n)
	}
	if calls := h.Stats().CallsMade - before; calls > 8 {
		t.Errorf("io.Copy of %d bytes made %d calls; want a megabyte a call", n, calls)
	}
	b.Close()

	b, err = svc.OpenBlob(n)
	if err != nil {
		t.Fatal(err)
	}
	before = h.Stats().CallsMade
	if got, err := io.Copy(io.Discard, b); err != nil || got != n {
		t.Fatalf("io.Copy into io.Discard = %d, %v; want %d", got, err, n)
	}
	if calls := h.Stats().CallsMade - before; calls > 8 {
		t.Errorf("io.Copy into io.Discard made %d calls; want a megabyte a call", calls)
	}
	b.Close()

	b, err = svc.OpenBlob(n)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := &failingWriter{limit: 1 << 20}
	if got, err := io.Copy(w, b); got != 1<<20 || err == nil || err.Error() != "disk full" || !bytes.Equal(w.got, contract.Pattern(n)[:1<<20]) {
		t.Errorf("io.Copy into a writer that fails after 1 MiB = %d, %v; want 1048576, disk full", got, err)
	}
}

// TestCopyIntoAContractWriter: refgen gives the proxy of a contract's own
// writer (Tally) a ReadFrom, so io.Copy into it writes a megabyte a round
// trip, with io.Copy's results: every byte, and a writer that fills up
// gets what fits and io.Copy its count and error.
func TestCopyIntoAContractWriter(t *testing.T) {
	h, _ := pair(t)
	svc, err := refbroker.Dispense[contract.Service](h, "svc")
	if err != nil {
		t.Fatal(err)
	}
	const n = 4<<20 + 123
	data := contract.Pattern(n)
	tally, err := svc.OpenTally(n)
	if err != nil {
		t.Fatal(err)
	}
	before := h.Stats().CallsMade
	// readerOnly: a source with no WriteTo, as a file is to io.Copy.
	if got, err := io.Copy(tally, readerOnly{bytes.NewReader(data)}); err != nil || got != n {
		t.Fatalf("io.Copy = %d, %v; want %d", got, err, n)
	}
	if calls := h.Stats().CallsMade - before; calls > 8 {
		t.Errorf("io.Copy of %d bytes made %d calls; want a megabyte a call", n, calls)
	}
	if got, err := tally.Got(); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the tally got %d bytes (%v); want the %d copied", len(got), err, n)
	}

	small, err := svc.OpenTally(1<<20 + 5)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.Copy(small, readerOnly{bytes.NewReader(data)}); got != 1<<20+5 || err == nil || !strings.Contains(err.Error(), "tally: full") {
		t.Errorf("io.Copy into a tally that fills up = %d, %v; want %d, tally: full", got, err, 1<<20+5)
	}
}

// readerOnly hides every method of its reader but Read.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
