package refbroker

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

type byteBuf []byte

// filledShapes has methods that do and do not fill their caller's buffer.
type filledShapes interface {
	Read(p []byte) (int, error)
	ReadAt(p []byte, off int64) (n int, err error)
	ReadChunk(ctx context.Context, p []byte) (int, error)
	ReadInto(p byteBuf) (int, error)
	ReadAtMost(n int) ([]byte, error)
	Readme(p []byte) (int, error)
	Write(p []byte) (int, error)
	Fill(p []byte) (int, error)
	ReadAll(p []byte) (int64, error)
	ReadQuiet(p []byte) int
	ReadBytes(p ...byte) (int, error)
}

// TestFillsBuffer: the methods that get their buffer back are those Go
// names and shapes as reads (io.Reader's Read, io.ReaderAt's ReadAt, and
// a contract's own Read… alike), on both sides alike.
func TestFillsBuffer(t *testing.T) {
	want := map[string]bool{"Read": true, "ReadAt": true, "ReadChunk": true, "ReadInto": true}
	p, err := ifacePlanFor(reflect.TypeFor[filledShapes]())
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range p.methods {
		if m.fills != want[name] {
			t.Errorf("%s: fills = %v, want %v", name, m.fills, want[name])
		}
	}
	for _, fn := range []any{func([]byte) (int, error) { return 0, nil }} {
		fp, _ := funcMethods(reflect.TypeOf(fn))
		if m := fp.methods[""]; m.fills {
			t.Errorf("a func %T fills its buffer; want not (a func has no name to go by)", fn)
		}
	}
}

// TestFilledBytesFromAHostilePeer: a return that claims to fill more than
// the caller's buffer, or more than it carries, is refused as malformed,
// and the buffer is not written past its length.
func TestFilledBytesFromAHostilePeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  func(e *encoder)
		want string
	}{
		{"more than the buffer", func(e *encoder) { e.uvarint(20); e.rawBytes(make([]byte, 20)) }, "20 bytes filled into a buffer of 10"},
		{"more than the message", func(e *encoder) { e.uvarint(1 << 40) }, "a filled buffer of 1099511627776 bytes"},
	} {
		e := &encoder{}
		tc.msg(e)
		buf := make([]byte, 10, 40)
		d := &decoder{buf: e.buf}
		readFilled(d, &outArgs{fills: true, args: []reflect.Value{reflect.ValueOf(buf)}}, false)
		if d.err == nil || !strings.Contains(d.err.Error(), tc.want) {
			t.Errorf("%s: %v; want a malformed message naming %q", tc.name, d.err, tc.want)
		}
		if full := buf[:cap(buf)]; strings.Trim(string(full), "\x00") != "" {
			t.Errorf("%s: the buffer was written: %q", tc.name, full)
		}
	}
	// A return nobody waits for is read and dropped.
	e := &encoder{}
	e.uvarint(3)
	e.rawBytes([]byte("abc"))
	d := &decoder{buf: e.buf}
	readFilled(d, &outArgs{fills: true}, false)
	if d.err != nil || d.remaining() != 0 {
		t.Errorf("dropping a filled buffer: %v, %d bytes left", d.err, d.remaining())
	}
}
