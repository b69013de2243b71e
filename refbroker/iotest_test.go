package refbroker_test

import (
	"fmt"
	"io"
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
