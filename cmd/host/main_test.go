package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/internal/testutil"
)

// plugin is the example plugin, built once from cmd/example-plugin.
var plugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "refplug-cmd-host")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	plugin = filepath.Join(dir, "example-plugin")
	build := exec.Command("go", "build", "-o", plugin, "../example-plugin")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the example plugin:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestExample runs the example end to end: the real example plugin driven
// by the host's run.
func TestExample(t *testing.T) {
	var out bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: &out})
	if err := run(&out, plugin, logger); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"calls travel on a private socket pair",
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

func runCLI(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = cli(args, &o, &e)
	return o.String(), e.String(), code
}

func TestDescribeCommand(t *testing.T) {
	out, errOut, code := runCLI("describe", plugin)
	if code != 0 {
		t.Fatalf("describe: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"indexer (*main.indexer)",
		"Build  func(context.Context, shared.Source, func(int, int)) (shared.Index, error)",
		"Name   func() (string, error)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe output lacks %q:\n%s", want, out)
		}
	}
}

func TestCallCommand(t *testing.T) {
	out, errOut, code := runCLI("call", plugin, "indexer", "Name")
	if code != 0 || out != "\"toy full-text indexer 1.0\"\n" {
		t.Errorf("call Name: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"call", plugin, "indexer", "Nope"}, 1, "has no method Nope (its methods: Build, Name)"},
		{[]string{"call", plugin, "nope", "Name"}, 1, `no object named "nope" is served here (served: ["indexer"])`},
		{[]string{"call", plugin, "indexer", "Name", "not-json"}, 1, "argument 1 is not JSON"},
		{[]string{"call", plugin, "indexer", "Build", "null", "null"}, 1, "argument 1 (shared.Source) cannot be given as JSON"},
		{[]string{"call", plugin}, 2, "usage: host call"},
		{[]string{"frob"}, 2, `unknown command "frob"`},
		{[]string{"describe", "-cookie", "nokey", plugin}, 2, "-cookie wants KEY=VALUE"},
		{[]string{"describe", filepath.Join(t.TempDir(), "missing")}, 1, "no such file"},
	} {
		_, errOut, code := runCLI(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("host %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

// TestTimeout: -timeout bounds the start and the call; a method that
// ignores its context (svcplugin's Hang) does not keep the inspector.
func TestTimeout(t *testing.T) {
	svc := filepath.Join(t.TempDir(), "svcplugin")
	if out, err := exec.Command("go", "build", "-o", svc, "../../testdata/svcplugin").CombinedOutput(); err != nil {
		t.Fatalf("building svcplugin: %v\n%s", err, out)
	}
	done := make(chan string, 1)
	go func() {
		_, errOut, code := runCLI("call", "-timeout", "300ms", svc, "svc", "Hang")
		done <- fmt.Sprintf("exit %d, stderr %q", code, errOut)
	}()
	got := testutil.Receive(t, done, 20*time.Second, "host call -timeout 300ms of a method that never returns still runs after 20 s")
	if !strings.HasPrefix(got, "exit 1,") || !strings.Contains(got, "context deadline exceeded") {
		t.Errorf("host call -timeout 300ms svc Hang: %s; want exit 1 and the deadline", got)
	}
	if _, errOut, code := runCLI("describe", "-timeout", "1ms", svc); code != 1 || !strings.Contains(errOut, "context deadline exceeded") {
		t.Errorf("host describe -timeout 1ms: exit %d, stderr %q; want exit 1 and the deadline", code, errOut)
	}
	if out, errOut, code := runCLI("call", "-timeout", "30s", svc, "svc", "Cancelled"); code != 0 || out != "0\n" {
		t.Errorf("host call -timeout 30s svc Cancelled: exit %d, stdout %q, stderr %q; want 0", code, out, errOut)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "call"}, {"call", "--help"}, {"describe", "-h"}, {"run", "--help"}} {
		out, errOut, code := runCLI(args...)
		if code != 0 || !strings.Contains(out+errOut, "usage: host") {
			t.Errorf("host %v: exit %d, output %q", args, code, out+errOut)
		}
	}
}
