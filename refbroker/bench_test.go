package refbroker

import (
	"reflect"
	"testing"
	"time"
)

// Benchmarks of the broker's own hot paths, in one process. refbench
// (cmd/refbench) measures whole calls between processes.

type benchDoc struct {
	ID    string
	Tags  []string
	Meta  map[string]int
	When  time.Time
	Parts []struct{ X, Y int }
	Note  *string
}

func sampleDoc() benchDoc {
	note := "note"
	d := benchDoc{ID: "doc-1", Tags: []string{"a", "b", "c"}, Meta: map[string]int{"x": 1, "y": 2}, When: time.Unix(1, 2), Note: &note}
	for i := range 16 {
		d.Parts = append(d.Parts, struct{ X, Y int }{i, -i})
	}
	return d
}

func BenchmarkEncodeStruct(b *testing.B) {
	c, _ := codecFor(reflect.TypeFor[benchDoc]())
	v := reflect.ValueOf(sampleDoc())
	e := &encoder{}
	b.ReportAllocs()
	for b.Loop() {
		e.buf = e.buf[:0]
		if err := c.enc(e, v); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(e.buf)))
}

func BenchmarkDecodeStruct(b *testing.B) {
	c, _ := codecFor(reflect.TypeFor[benchDoc]())
	e := &encoder{}
	if err := c.enc(e, reflect.ValueOf(sampleDoc())); err != nil {
		b.Fatal(err)
	}
	out := reflect.New(c.t).Elem()
	b.ReportAllocs()
	b.SetBytes(int64(len(e.buf)))
	for b.Loop() {
		d := decoder{buf: e.buf}
		c.dec(&d, out)
		if d.err != nil {
			b.Fatal(d.err)
		}
	}
}

// BenchmarkExportLookup: sending an already exported object again finds
// its export by identity.
func BenchmarkExportLookup(b *testing.B) {
	client, _ := benchPair(b)
	t := reflect.TypeFor[named]()
	v := reflect.New(t).Elem()
	v.Set(reflect.ValueOf(&thing{label: "x"}))
	e := client.newEncoder()
	b.ReportAllocs()
	for b.Loop() {
		e.buf = e.buf[:0]
		e.sent = e.sent[:0]
		if err := client.writeRef(e, v, t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportLookup: receiving a reference this side already holds a
// proxy for finds the proxy.
func BenchmarkImportLookup(b *testing.B) {
	client, _ := benchPair(b)
	t := reflect.TypeFor[named]()
	r, err := client.importRef(1, t)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.importRef(1, t); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = r.String()
}

// BenchmarkCallInProcess: a whole call through a typed proxy over net.Pipe.
func BenchmarkCallInProcess(b *testing.B) {
	client, _ := benchPair(b)
	m, err := Dispense[maker](client, "m")
	if err != nil {
		b.Fatal(err)
	}
	th := &thing{label: "t"}
	for _, bc := range []struct {
		name string
		call func() error
	}{
		{"plain", func() error { _, err := m.Make("x"); return err }},
		{"passing a reference", func() error { _, err := m.Take(th); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.call(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchPair(b *testing.B) (client, server *Conn) {
	return testPair(b, map[string]any{"m": &factory{}})
}
