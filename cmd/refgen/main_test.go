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
