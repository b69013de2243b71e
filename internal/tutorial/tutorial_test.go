// Package tutorial holds the test that builds and runs the README's
// tutorial, as shown, in a fresh module: the first hour of a new user.
package tutorial

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// files are the tutorial's files: where each goes, after the README line
// that names it.
var files = map[string]string{
	"kv/kv.go":       "`kv/kv.go`:",
	"plugin/main.go": "`plugin/main.go`:",
	"host/main.go":   "`host/main.go`",
	// The plugin's test, which serves its objects in process.
	"plugin/main_test.go": "`plugin/main_test.go`",
}

// codeAfter returns the first ```go block after marker in readme.
func codeAfter(t *testing.T, readme, marker string) string {
	t.Helper()
	i := strings.Index(readme, marker)
	if i < 0 {
		t.Fatalf("the README has no %q", marker)
	}
	rest := readme[i:]
	start := strings.Index(rest, "```go\n")
	if start < 0 {
		t.Fatalf("no code block after %q", marker)
	}
	rest = rest[start+len("```go\n"):]
	end := strings.Index(rest, "```")
	return rest[:end]
}

func TestTutorial(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(self), "..", "..")
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for path, marker := range files {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(codeAfter(t, string(readme), marker)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What go get and go get -tool would write, as the README says, with
	// the module replaced by this checkout (it is not published from here)
	// and its requirements and sums.
	own, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	requires := string(own[strings.Index(string(own), "require"):])
	gomod := "module example.com/kv\n\ngo 1.26\n\n" +
		"require github.com/refplug/refplug v0.0.0\n\n" + requires + "\n" +
		"replace github.com/refplug/refplug => " + repo + "\n\n" +
		"tool github.com/refplug/refplug/cmd/refgen\n"
	sums, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sums} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		// The module cache this checkout's own build filled has what the
		// build needs, but the go command may want go.mod files of older
		// versions the checkout's build never loaded (a requirement's own
		// requirements, for the tutorial's module graph): those come from
		// the proxy the environment names, as they would for a new user,
		// checked against the checkout's go.sum, which lists them.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	run("go", "generate", "./...")
	if _, err := os.Stat(filepath.Join(dir, "kv", "refplug_proxies.go")); err != nil {
		t.Fatalf("go generate wrote no proxies: %v", err)
	}
	run("go", "vet", "./...")
	if out := run("go", "test", "-count=1", "-v", "./plugin"); !strings.Contains(out, "--- PASS: TestStore") {
		t.Errorf("the tutorial's plugin test printed\n%s\nwant TestStore passed", out)
	}
	run("go", "build", "-o", "kv-plugin", "./plugin")
	out := run("go", "run", "./host")
	for _, want := range []string{"not found: true", "changed: v1", "watch ended: context deadline exceeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("the tutorial's host printed\n%s\nwant %q in it", out, want)
		}
	}
}
