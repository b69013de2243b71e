package refbroker

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// streamUser reads once from the stream it is given and reports the
// error that read got.
type streamUser interface {
	Read(r io.Reader) (string, error)
	ReadAt(r io.ReaderAt) (string, error)
	ReadSeek(r io.ReadSeeker) (string, error)
}

type streamUserProxy struct{ *Ref }

func (p streamUserProxy) Read(r io.Reader) (string, error) {
	var s string
	err := p.Invoke("Read", []any{r}, &s)
	return s, err
}

func (p streamUserProxy) ReadAt(r io.ReaderAt) (string, error) {
	var s string
	err := p.Invoke("ReadAt", []any{r}, &s)
	return s, err
}

func (p streamUserProxy) ReadSeek(r io.ReadSeeker) (string, error) {
	var s string
	err := p.Invoke("ReadSeek", []any{r}, &s)
	return s, err
}

func init() {
	RegisterInterface[streamUser](func(r *Ref) streamUser { return streamUserProxy{r} })
}

type streamUserImpl struct{}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func (streamUserImpl) Read(r io.Reader) (string, error) {
	_, err := r.Read(make([]byte, 4))
	return errText(err), nil
}

func (streamUserImpl) ReadAt(r io.ReaderAt) (string, error) {
	_, err := r.ReadAt(make([]byte, 4), 0)
	return errText(err), nil
}

func (streamUserImpl) ReadSeek(r io.ReadSeeker) (string, error) {
	_, err := r.Read(make([]byte, 4))
	return errText(err), nil
}

// burningDisk's every method panics.
type burningDisk struct{}

func (burningDisk) Read([]byte) (int, error)          { panic("the disk caught fire") }
func (burningDisk) ReadAt([]byte, int64) (int, error) { panic("the disk caught fire") }
func (burningDisk) Seek(int64, int) (int64, error)    { panic("the disk caught fire") }

// TestBuiltinStreamFailuresNameTheirMethod: the built-in readers cross
// with methods of their own (ReadAtMost, ReadSpan), but what a failure
// of one says names the method its user called — "io.Reader.Read", not
// the wire's — so a plugin author whose read failed, or a host author
// reading the log, knows which call it was.
func TestBuiltinStreamFailuresNameTheirMethod(t *testing.T) {
	client, _ := testPair(t, map[string]any{"u": streamUserImpl{}})
	u, err := Dispense[streamUser](client, "u")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() (string, error)
		want string
	}{
		{"io.Reader", func() (string, error) { return u.Read(burningDisk{}) }, "refbroker: io.Reader.Read panicked: the disk caught fire"},
		{"io.ReaderAt", func() (string, error) { return u.ReadAt(burningDisk{}) }, "refbroker: io.ReaderAt.ReadAt panicked: the disk caught fire"},
		{"io.ReadSeeker", func() (string, error) { return u.ReadSeek(burningDisk{}) }, "refbroker: io.ReadSeeker.Read panicked: the disk caught fire"},
	} {
		got, err := tc.call()
		if err != nil {
			t.Fatalf("%s: the call failed: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: a read of a reader that panics failed with %q; want %q", tc.name, got, tc.want)
		}
		if strings.Contains(got, "Wire") || strings.Contains(got, "ReadAtMost") || strings.Contains(got, "ReadSpan") {
			t.Errorf("%s: %q names refbroker's wire method, not the reader's", tc.name, got)
		}
	}
}

// TestBuiltinStreamCallsAfterCloseNameTheirMethod: a read through a proxy
// whose connection has ended names io.Reader's Read too.
func TestBuiltinStreamCallsAfterCloseNameTheirMethod(t *testing.T) {
	client, server := testPair(t, map[string]any{"r": io.Reader(strings.NewReader("abc"))})
	r, err := Dispense[io.Reader](client, "r")
	if err != nil {
		t.Fatal(err)
	}
	server.Close()
	_, err = r.Read(make([]byte, 4))
	if err == nil || !errors.Is(err, ErrDisconnected) || !strings.Contains(err.Error(), "io.Reader.Read") {
		t.Errorf("a Read after the connection ended = %v; want ErrDisconnected naming io.Reader.Read", err)
	}
}
