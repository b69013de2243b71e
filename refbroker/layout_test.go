package refbroker

import (
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

// TestStructByName: a struct whose layouts differ is decoded by field
// name: shared fields land where they belong, the sender's extra fields
// (references, maps, errors, any, pointers, slices) are skipped, and the
// reference among them is released; a number that does not fit fails
// naming the field.
func TestStructByName(t *testing.T) {
	client, server := testPair(t, nil)
	send, recv := senderRec(), receiverRec()
	name := send.Type().String()
	if recv.Type().String() != name {
		t.Fatalf("the two versions are named %s and %s", name, recv.Type())
	}
	if err := server.describe(send.Type()); err != nil {
		t.Fatal(err)
	}
	if err := client.describe(recv.Type()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the client to learn the server's layout", func() bool {
		known := false
		client.locked(func(s *state) { known = s.layouts.peer[name] != nil })
		return known && client.layoutsDiffer.Load()
	})

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
