package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata/*/refplug_proxies.go)")

// goldenDirs are packages whose refplug_proxies.go is refgen's expected
// output; they also compile with it, which TestGeneratedCodeCompiles checks.
var goldenDirs = []string{"testdata/shapes", "testdata/collide"}

func TestGolden(t *testing.T) {
	for _, dir := range goldenDirs {
		t.Run(dir, func(t *testing.T) {
			got, err := generate(dir, "refplug_proxies.go", nil)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "refplug_proxies.go")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("refgen output for %s differs from %s (run go test ./cmd/refgen -update):\n%s", dir, path, got)
			}
		})
	}
}

// TestGeneratedCodeCompiles vets the golden packages, generated file
// included: every proxy implements its interface (RegisterInterface would
// not compile otherwise) and go vet has nothing to say.
func TestGeneratedCodeCompiles(t *testing.T) {
	for _, dir := range goldenDirs {
		cmd := exec.Command("go", "vet", "./"+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go vet ./%s: %v\n%s", dir, err, out)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct {
		types []string
		want  string
	}{
		{[]string{"Nope"}, "-type Nope: no such type"},
		{[]string{"Item"}, "-type Item: shapes.Item is not an interface"},
		{[]string{"Generic"}, "generic interfaces are not supported"},
		{[]string{"Constraint"}, "a type constraint is not a method set"},
		{[]string{"Empty"}, "it has no methods"},
	} {
		_, err := generate("testdata/shapes", "refplug_proxies.go", c.types)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("-type %v: %v; want an error containing %q", c.types, err, c.want)
		}
	}
	if _, err := generate("testdata/handwritten", "refplug_proxies.go", nil); err == nil || !strings.Contains(err.Error(), "thingProxy is already declared") {
		t.Errorf("a hand-written proxy in the way: %v", err)
	}
}

// TestCheckOutput: -output names a Go file in the package directory; a
// path or another kind of file is refused, saying so.
func TestCheckOutput(t *testing.T) {
	for _, name := range []string{"refplug_proxies.go", "cache_proxies.go"} {
		if err := checkOutput(name, "."); err != nil {
			t.Errorf("-output %s: %v", name, err)
		}
	}
	for _, name := range []string{"", "/tmp/x.go", "sub/x.go", "x.txt", "../x.go"} {
		if err := checkOutput(name, "."); err == nil || !strings.Contains(err.Error(), "give a file name ending in .go") {
			t.Errorf("-output %q: %v; want it refused", name, err)
		}
	}
}

// TestLoadErrors: a directory refgen cannot read as a package gets an
// error that says why: missing, a file, outside any module, or not Go
// that parses (the compiler's first errors). Type errors alone are
// tolerated (the package may use the proxies being generated).
func TestLoadErrors(t *testing.T) {
	outside := t.TempDir() // no go.mod in it or above it
	if err := os.WriteFile(filepath.Join(outside, "x.go"), []byte("package x\n\ntype X interface{ F() error }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken, err := os.MkdirTemp("testdata", "broken")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(broken) })
	if err := os.WriteFile(filepath.Join(broken, "x.go"), []byte("package broken\n\ntype X interface{ F( }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dir, want string
	}{
		{"missing", filepath.Join(outside, "nope"), "stat " + filepath.Join(outside, "nope") + ": no such file or directory"},
		{"a file", "main.go", "main.go is not a directory"},
		{"outside any module", outside, "no Go package found there (is it inside a Go module"},
		{"a syntax error", broken, "x.go:3:22: expected ')', found '}'"},
	} {
		if _, err := generate(c.dir, "refplug_proxies.go", nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error containing %q", c.name, err, c.want)
		}
	}
}

// captureNotes collects what refgen notes on stderr until the test ends.
func captureNotes(t *testing.T) *strings.Builder {
	buf := &strings.Builder{}
	notes = buf
	t.Cleanup(func() { notes = os.Stderr })
	return buf
}

// TestSkippedGenericInterfaces: without -type, refgen generates for every
// interface it can and says which generic ones it skipped, and how to
// generate for them, instead of leaving them out without a word (the
// instantiations the contract uses get proxies: the golden file).
func TestSkippedGenericInterfaces(t *testing.T) {
	buf := captureNotes(t)
	if _, err := generate("testdata/shapes", "refplug_proxies.go", nil); err != nil {
		t.Fatal(err)
	}
	if want := "generic interface Generic: proxies are written for the instantiations the other interfaces use; for another, name it (type X = Generic[int]) and generate it with -type X"; !strings.Contains(buf.String(), want) {
		t.Errorf("refgen said %q; want %q", buf.String(), want)
	}
}

// TestInstancesRegisteredElsewhere: an instantiation another file of the
// package registers a proxy for (one written by refgen -type for an alias,
// as refgen's notes advised before it wrote instantiations itself) gets
// no second one, which would panic at init; and generating that alias with
// -type, once the main file has the instantiation's proxy, is refused,
// naming the file.
func TestInstancesRegisteredElsewhere(t *testing.T) {
	captureNotes(t)
	got, err := generate("testdata/instances", "refplug_proxies.go", nil)
	if err != nil {
		t.Fatal(err)
	}
	src := string(got)
	if !strings.Contains(src, "RegisterInterface[Cache[int]]") || strings.Contains(src, "RegisterInterface[Cache[string]]") {
		t.Errorf("want a proxy for Cache[int] and none for Cache[string] (cache_string.go has one):\n%s", src)
	}
	_, err = generate("testdata/instances", "other_proxies.go", []string{"StringCache"})
	if want := "StringCache: a proxy for Cache[string] is already registered in cache_string.go"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("-type StringCache: %v; want an error containing %q", err, want)
	}
}

// TestNotesDroppedEmbeddedFields: a data type that embeds a struct of an
// unexported type crosses without that struct's fields (as with gob), so
// refgen says so, once per type, naming it and what to do; an embedded
// type without exported fields hides nothing and is not named.
func TestNotesDroppedEmbeddedFields(t *testing.T) {
	buf := captureNotes(t)
	if _, err := generate("testdata/embeds", "refplug_proxies.go", nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"refgen: embeds.Doc embeds embeds.base, an unexported type: its fields do not cross (as with gob; encoding/json would promote them). Export the type, or give the field a name\n",
		"refgen: embeds.Item embeds *embeds.base, an unexported type",
	} {
		if strings.Count(buf.String(), want) != 1 {
			t.Errorf("refgen said:\n%s\nwant once: %q", buf.String(), want)
		}
	}
	if strings.Contains(buf.String(), "hidden") {
		t.Errorf("refgen named an embedded type with no exported fields:\n%s", buf.String())
	}
}

// TestRefusesWhatCannotCross: refgen refuses an interface whose types
// cannot cross, naming every method and parameter in the words Dispense
// uses, instead of writing a proxy that fails at the first Dispense.
func TestRefusesWhatCannotCross(t *testing.T) {
	_, err := generate("testdata/refused", "refplug_proxies.go", nil)
	if err == nil {
		t.Fatal("refgen wrote proxies for an interface that cannot cross")
	}
	for _, want := range []string{
		"refused.Bad.Watch: parameter 1: chan int cannot cross: channels and unsafe pointers are not supported (hint: pass a func or an interface instead)",
		"refused.Bad.Late: parameter 2: context.Context cannot cross: a context.Context crosses only as the first parameter of a method or func",
		"refused.Bad.Keys: parameter 1: map[refused.Thing]int cannot cross: map keys must be plain data, not interfaces or funcs",
		"refused.Bad.Hidden: result 1: refused.Opaque cannot cross: it has no exported fields",
		"refused.Bad.Deep: parameter 1: field refused.Doc.Parts: element of []struct { C chan string }: field struct { C chan string }.C: chan string cannot cross",
		"refused.Bad.Ptr: parameter 1: unsafe.Pointer cannot cross",
		"refused.Bad.Callback: parameter 1: func(chan bool): parameter 1: chan bool cannot cross",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refgen: %v\nwant it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Fine") {
		t.Errorf("refgen refused a method that can cross: %v", err)
	}
}

// TestCheck runs the command as go generate would, in -check mode.
func TestCheck(t *testing.T) {
	run := func(dir string) error {
		cmd := exec.Command("go", "run", ".", "-check", dir)
		cmd.Stderr = os.Stderr
		return cmd.Run()
	}
	if err := run("testdata/shapes"); err != nil {
		t.Errorf("-check on an up-to-date package: %v", err)
	}
	stale := t.TempDir()
	for _, f := range []string{"shapes.go", "refplug_proxies.go"} {
		b, err := os.ReadFile(filepath.Join("testdata/shapes", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "refplug_proxies.go" {
			b = bytes.Replace(b, []byte("Invoke(\"Close\""), []byte("Invoke(\"Shut\""), 1)
		}
		if err := os.WriteFile(filepath.Join(stale, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The copy must sit inside the module to resolve its imports.
	dir, err := os.MkdirTemp("testdata", "stale-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, f := range []string{"shapes.go", "refplug_proxies.go"} {
		b, _ := os.ReadFile(filepath.Join(stale, f))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	if err := run(dir); err == nil {
		t.Errorf("-check on a stale file succeeded")
	}
}
