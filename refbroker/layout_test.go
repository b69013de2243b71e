package refbroker

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/refplug/refplug/internal/testutil"
)

// Two versions of one struct, as two builds of a contract would have
// them: local types of the same name ("refbroker.rec").
func senderRec() reflect.Value {
	type rec struct {
		A    int
		F    func() int // a reference only the sender has: skipped, and released
		M    map[string][]int
		E    error
		X    any
		P    *int
		S    []int16
		Keep string
		Fl   float32
	}
	seven := 7
	return reflect.ValueOf(rec{A: 41, F: func() int { return 1 }, M: map[string][]int{"k": {1}}, E: errors.New("e"),
		X: "any", P: &seven, S: []int16{1, 2}, Keep: "kept", Fl: 1.5})
}

func receiverRec() reflect.Value {
	type rec struct {
		Fl   float64
		Keep string
		New  []string
		A    int8
	}
	return reflect.New(reflect.TypeOf(rec{})).Elem()
}

// learnLayouts has server describe sendT and client recvT, two builds of
// one struct, and waits until the client knows the server's layout.
func learnLayouts(t *testing.T, client, server *Conn, sendT, recvT reflect.Type) {
	t.Helper()
	if sendT.String() != recvT.String() {
		t.Fatalf("the two versions are named %s and %s", sendT, recvT)
	}
	if err := server.describe(context.Background(), sendT); err != nil {
		t.Fatal(err)
	}
	if err := client.describe(context.Background(), recvT); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the client to learn the server's layout", func() bool {
		known := false
		client.locked(func(s *state) { known = s.layouts.peer[sendT.String()] != nil })
		return known && client.layoutsDiffer.Load()
	})
}

// encodeBy encodes v as conn would send it, and returns the message's
// bytes (after the frame's room), the encoder discarded.
func encodeBy(t *testing.T, conn *Conn, v reflect.Value) []byte {
	t.Helper()
	c, err := codecFor(v.Type())
	if err != nil {
		t.Fatal(err)
	}
	e := conn.newEncoder()
	if err := c.enc(e, v); err != nil {
		t.Fatal(err)
	}
	msg := append([]byte(nil), e.buf[frameRoom:]...)
	conn.discard(e)
	return msg
}

// TestStructByName: a struct whose layouts differ is decoded by field
// name: shared fields land where they belong, the sender's extra fields
// (references, maps, errors, any, pointers, slices) are skipped, and the
// reference among them is released; a number that does not fit fails
// naming the field.
func TestStructByName(t *testing.T) {
	client, server := testPair(t, nil)
	send, recv := senderRec(), receiverRec()
	learnLayouts(t, client, server, send.Type(), recv.Type())

	c, _ := codecFor(send.Type())
	e := server.newEncoder()
	if err := c.enc(e, send); err != nil {
		t.Fatal(err)
	}
	msg := append([]byte(nil), e.buf[frameRoom:]...)
	freeEncoder(e) // as if sent: the func's export stays counted
	if n := server.Stats().Exports; n != 1 {
		t.Fatalf("server exports after encoding = %d, want 1 (the func)", n)
	}

	rc, _ := codecFor(recv.Type())
	d := &decoder{buf: msg, refs: client}
	rc.dec(d, recv)
	if d.err != nil || d.remaining() != 0 {
		t.Fatalf("decoding by name: %v (%d bytes left)", d.err, d.remaining())
	}
	if got := recv.FieldByName("Keep").String(); got != "kept" {
		t.Errorf("Keep = %q", got)
	}
	if got := recv.FieldByName("A").Int(); got != 41 {
		t.Errorf("A = %d", got)
	}
	if got := recv.FieldByName("Fl").Float(); got != 1.5 {
		t.Errorf("Fl = %v (float32 to float64)", got)
	}
	if !recv.FieldByName("New").IsNil() {
		t.Errorf("New = %v; want it zero", recv.FieldByName("New"))
	}
	testutil.Eventually(t, "the skipped func to be released", func() bool { return server.Stats().Exports == 0 })

	// A value that does not fit the receiver's field fails, naming it.
	big := senderRec()
	v := reflect.New(big.Type()).Elem()
	v.Set(big)
	v.FieldByName("A").SetInt(1000)
	v.FieldByName("F").SetZero()
	e = server.newEncoder()
	if err := c.enc(e, v); err != nil {
		t.Fatal(err)
	}
	d = &decoder{buf: append([]byte(nil), e.buf[frameRoom:]...), refs: client}
	server.discard(e)
	rc.dec(d, receiverRec())
	if d.err == nil || !strings.Contains(d.err.Error(), "field refbroker.rec.A: 1000 overflows int8") {
		t.Errorf("decoding A=1000 into an int8 = %v; want the field named", d.err)
	}
}

// Two builds of a struct with a large array field (local types named
// "refbroker.digest"); the sender's has a field more.
func senderDigest() reflect.Value {
	type digest struct {
		Sum  [4096]byte
		Note string
	}
	v := reflect.New(reflect.TypeOf(digest{})).Elem()
	v.Field(0).Index(4095).SetUint(7)
	v.Field(1).SetString("only the sender has it")
	return v
}

func receiverDigest() reflect.Value {
	type digest struct{ Sum [4096]byte }
	return reflect.New(reflect.TypeOf(digest{})).Elem()
}

// TestLayoutWithLargeArray: an array's length in a struct's description is
// a type's, not a count of bytes to come, so a layout with a 4096-element
// array, in a message far shorter, is learnt, and a value of it decoded by
// name; a description claiming an absurd array is refused, and so is a
// value whose skipped array has more elements than the message has bytes.
func TestLayoutWithLargeArray(t *testing.T) {
	client, server := testPair(t, nil)
	send, recv := senderDigest(), receiverDigest()
	learnLayouts(t, client, server, send.Type(), recv.Type())
	if err := client.Err(); err != nil {
		t.Fatalf("the connection ended on the description: %v", err)
	}
	msg := encodeBy(t, server, send)
	rc, _ := codecFor(recv.Type())
	d := &decoder{buf: msg, refs: client}
	rc.dec(d, recv)
	if d.err != nil || d.remaining() != 0 || recv.Field(0).Index(4095).Uint() != 7 {
		t.Fatalf("decoding by name: %v (%d bytes left, last element %d)", d.err, d.remaining(), recv.Field(0).Index(4095).Uint())
	}

	e := &encoder{}
	e.byte1(byte(wArray))
	e.uvarint(1 << 40)
	e.byte1(byte(wInt))
	d = &decoder{buf: e.buf}
	if readWireType(d, 0, &typeParts{left: 10}); d.err == nil || !strings.Contains(d.err.Error(), "an array of 1099511627776 elements") {
		t.Errorf("a description of an array of 2^40 elements = %v; want it refused", d.err)
	}

	huge := &wireType{kind: wArray, n: 1 << 30, elem: &wireType{kind: wInt}}
	d = &decoder{buf: []byte{1, 2, 3}, refs: client}
	if client.skip(d, huge); d.err == nil || !strings.Contains(d.err.Error(), "exceeds the message") {
		t.Errorf("skipping an array of 2^30 elements in 3 bytes = %v; want it refused", d.err)
	}
	none := &wireType{kind: wArray, n: 1 << 30, elem: &wireType{kind: wArray, n: 0, elem: &wireType{kind: wInt}}}
	d = &decoder{buf: []byte{1, 2, 3}, refs: client}
	if client.skip(d, none); d.err != nil || d.remaining() != 3 {
		t.Errorf("skipping 2^30 empty arrays = %v, %d bytes left; want nothing read", d.err, d.remaining())
	}
}
