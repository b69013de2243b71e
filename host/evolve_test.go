package host_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/refbroker"
	c1 "github.com/refplug/refplug/testdata/evolve/v1/contract"
	c2 "github.com/refplug/refplug/testdata/evolve/v2/contract"
	c3 "github.com/refplug/refplug/testdata/evolve/v3/contract"
)

// The compatibility matrix: a contract released three times
// (testdata/evolve/v1..v3: v2 adds fields and a method, moves a field and
// widens a number; v3 removes a field and turns Size into a string), each
// version built into a plugin, and this host speaking each version to each
// plugin through host.Load.

// version is one version of the contract, as the host uses it.
type version struct {
	record     reflect.Type
	sample     any // a Record with every field set
	basic      func(c *host.Client) (any, error)
	store      func(c *host.Client) (any, error)
	sizeGoType string
}

// This host registers version 2's Note (a process can register one type
// under a name); each plugin registers its own.
func init() { refbroker.RegisterTypeName("evolve.Note", c2.Note{}) }

var versions = map[int]version{
	1: {
		record:     reflect.TypeFor[c1.Record](),
		sample:     c1.Record{ID: "r1", Size: 42, Tags: []string{"a", "b"}, Loc: &c1.Point{X: 1, Y: 2}, Ps: []c1.Point{{X: 3, Y: 4}}, Small: 7},
		basic:      func(c *host.Client) (any, error) { return host.Dispense[c1.Basic](c, "store") },
		store:      func(c *host.Client) (any, error) { return host.Dispense[c1.Store](c, "store") },
		sizeGoType: "int",
	},
	2: {
		record:     reflect.TypeFor[c2.Record](),
		sample:     c2.Record{ID: "r1", Size: 42, Tags: []string{"a", "b"}, Owner: "o", Loc: &c2.Point{X: 1, Y: 2, Z: 5}, Ps: []c2.Point{{X: 3, Y: 4, Z: 6}}, Small: 7},
		basic:      func(c *host.Client) (any, error) { return host.Dispense[c2.Basic](c, "store") },
		store:      func(c *host.Client) (any, error) { return host.Dispense[c2.Store](c, "store") },
		sizeGoType: "int64",
	},
	3: {
		record:     reflect.TypeFor[c3.Record](),
		sample:     c3.Record{ID: "r1", Size: "42", Owner: "o", Loc: &c3.Point{X: 1, Y: 2, Z: 5}, Ps: []c3.Point{{X: 3, Y: 4, Z: 6}}, Small: 7},
		basic:      func(c *host.Client) (any, error) { return host.Dispense[c3.Basic](c, "store") },
		store:      func(c *host.Client) (any, error) { return host.Dispense[c3.Store](c, "store") },
		sizeGoType: "string",
	},
}

// project returns what v (of the host's type) becomes after a trip
// through the plugin's type pt and back: fields the plugin lacks are zero.
func project(v reflect.Value, pt reflect.Type) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if pf, ok := pt.FieldByName(f.Name); ok {
				out.Field(i).Set(project(v.Field(i), pf.Type))
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(v.Type().Elem())
			p.Elem().Set(project(v.Elem(), pt.Elem()))
			out.Set(p)
		}
	case reflect.Slice:
		if !v.IsNil() {
			s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			for i := range v.Len() {
				s.Index(i).Set(project(v.Index(i), pt.Elem()))
			}
			out.Set(s)
		}
	default:
		out.Set(v)
	}
	return out
}

func call(obj any, method string, args ...any) []reflect.Value {
	in := make([]reflect.Value, len(args))
	for i, a := range args {
		in[i] = reflect.ValueOf(a)
	}
	return reflect.ValueOf(obj).MethodByName(method).Call(in)
}

func TestContractEvolution(t *testing.T) {
	for p := 1; p <= 3; p++ {
		for h := 1; h <= 3; h++ {
			t.Run(fmt.Sprintf("host v%d, plugin v%d", h, p), func(t *testing.T) {
				// A connection per pair: a host holds one version of a
				// contract (types are named by package and type name).
				c := load(t, fmt.Sprintf("plugin%d", p))
				hv, pv := versions[h], versions[p]
				basic, err := hv.basic(c)
				incompatible := (h == 3) != (p == 3) // Size: string against a number
				if incompatible {
					want := fmt.Sprintf("Record.Size is %s in the plugin, %s in the host", pv.sizeGoType, hv.sizeGoType)
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Fatalf("Dispense = %v; want it to say %q", err, want)
					}
					return
				}
				if err != nil {
					t.Fatalf("Dispense: %v", err)
				}
				// What goes in comes back with every field the plugin has,
				// and zero in those it lacks: never in another field.
				out := call(basic, "Put", hv.sample)
				if e := out[1].Interface(); e != nil {
					t.Fatalf("Put: %v", e)
				}
				want := project(reflect.ValueOf(hv.sample), pv.record).Interface()
				if got := out[0].Interface(); !reflect.DeepEqual(got, want) {
					t.Errorf("Put returned\n %+v\nwant\n %+v", got, want)
				}
				out = call(basic, "Get", "r1")
				if got := out[0].Interface(); !reflect.DeepEqual(got, want) {
					t.Errorf("Get returned\n %+v\nwant\n %+v", got, want)
				}
				// The plugin's own view of the record.
				view := call(basic, "View", hv.sample)[0].String()
				for _, f := range []string{"ID:r1", "Size:42", "Ps:[{X:3 Y:4"} {
					if !strings.Contains(view, f) {
						t.Errorf("the plugin sees %s; want %s in it", view, f)
					}
				}
				// A number that does not fit the plugin's field fails the
				// call, naming the field.
				if h == 2 && p == 1 {
					r := hv.sample.(c2.Record)
					r.Small = 1000
					err := call(basic, "Put", r)[1].Interface()
					if err == nil || !strings.Contains(fmt.Sprint(err), "field contract.Record.Small: 1000 overflows int8") {
						t.Errorf("Put with Small 1000 into a v1 plugin = %v; want the field named", err)
					}
				}
				// Note never appears in a signature, only inside an any: it
				// is checked when it first arrives, and an incompatible one
				// fails that call, naming the field.
				if h == 2 {
					note := c2.Note{Author: "me", Text: "hi", Stars: 5}
					out = call(basic, "Echo", note)
					err, _ := out[1].Interface().(error)
					switch p {
					case 1:
						if want := "Note.Stars is string in the plugin, int in the host"; err == nil || !strings.Contains(err.Error(), want) {
							t.Errorf("Echo(Note) to a v1 plugin = %v; want it to say %q", err, want)
						}
					case 2:
						if got := out[0].Interface(); err != nil || !reflect.DeepEqual(got, note) {
							t.Errorf("Echo(Note) = %+v, %v; want %+v", got, err, note)
						}
					}
				}
				// The whole interface: Count is new in v2.
				_, err = hv.store(c)
				if h >= 2 && p == 1 {
					if err == nil || !strings.Contains(err.Error(), "missing method Count") {
						t.Errorf("Dispense[Store] from a v1 plugin = %v; want Count missing", err)
					}
				} else if err != nil {
					t.Errorf("Dispense[Store]: %v", err)
				}
			})
		}
	}
}
