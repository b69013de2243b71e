package scenario

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/refplug/refplug/testdata/contract"
)

// Streams: multi-megabyte copies through io.Reader and io.Writer proxies,
// both ways.
func Streams(t *testing.T, svc contract.Service) {
	data := contract.Pattern(4<<20 + 123)
	var out bytes.Buffer
	n, err := svc.Copy(&out, bytes.NewReader(data)) // the plugin reads and writes the host's
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("Copy through the plugin: %d bytes, %v; equal = %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	rc, err := svc.Producer(3 << 20) // the host reads the plugin's
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, contract.Pattern(3<<20)) {
		t.Errorf("reading the plugin's reader: %d bytes, %v", len(got), err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wc, err := svc.Consumer() // the host writes to the plugin's
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(wc, bytes.NewReader(data)); err != nil {
		t.Errorf("writing to the plugin's writer: %v", err)
	}
	if err := wc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	cn, sum, closed, err := svc.Consumed()
	if err != nil || cn != len(data) || sum != contract.Sum(data) || !closed {
		t.Errorf("Consumed = %d, closed %v, %v; want %d bytes, the same checksum, closed", cn, closed, err, len(data))
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

// BuiltinInterfaces: fmt.Stringer crosses without a contract proxy, and an
// iter.Seq result works as the func it is, early stop included.
func BuiltinInterfaces(t *testing.T, svc contract.Service) {
	if got, err := svc.Describe(stringer("me")); err != nil || got != "described: me" {
		t.Errorf("Describe = %q, %v", got, err)
	}
	seq, err := svc.Count(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for v := range seq {
		got = append(got, v)
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Errorf("ranging over the plugin's iter.Seq: %v", got)
	}
	got = nil
	for v := range seq {
		if v == 3 {
			break
		}
		got = append(got, v)
	}
	if fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("breaking out of the plugin's iter.Seq: %v", got)
	}
	seq2, err := svc.Enumerate([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for i, w := range seq2 {
		pairs = append(pairs, fmt.Sprintf("%d:%s", i, w))
	}
	if fmt.Sprint(pairs) != "[0:a 1:b]" {
		t.Errorf("ranging over the plugin's iter.Seq2: %v", pairs)
	}
}
