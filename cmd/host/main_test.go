package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestExample runs the example end to end: the real example plugin, built
// from cmd/example-plugin, driven by the host's run.
func TestExample(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "../example-plugin")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building the example plugin: %v", err)
	}
	var out bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: &out})
	if err := run(&out, filepath.Join(dir, "example-plugin"), logger); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"toy full-text indexer",
		"progress callbacks from the plugin: 1/5 2/5 3/5 4/5 5/5",
		"the plugin returned an Index object: 5 documents",
		"1. guide/plugins.md",
		"errors.Is(err, shared.ErrNoSuchDoc) = true",
		"the plugin stopped: context canceled",
		"Search with a deadline that has passed: context deadline exceeded",
		"answers: refbroker: shared.Index.Stats: disconnected",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "[WARN]") || strings.Contains(out.String(), "[ERROR]") {
		t.Errorf("the example logged warnings or errors:\n%s", out.String())
	}
}
