package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/scenario"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// bin holds the test plugins, built once by TestMain from testdata/.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "refplug-host-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "../testdata/svcplugin", "../testdata/hangs", "../testdata/exits", "../testdata/rpcplugin")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the test plugins:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func load(t *testing.T, name string, opts ...host.Option) *host.Client {
	t.Helper()
	c, err := host.Load(filepath.Join(bin, name), append([]host.Option{host.WithLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dispenseSvc(t *testing.T, c *host.Client) contract.Service {
	t.Helper()
	svc, err := host.Dispense[contract.Service](c, "svc")
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	return svc
}

// TestScenariosPluginProcess runs every broker scenario against a real
// plugin process.
func TestScenariosPluginProcess(t *testing.T) {
	c := load(t, "svcplugin")
	scenario.Run(t, dispenseSvc(t, c))
}

func TestWithArgs(t *testing.T) {
	c := load(t, "svcplugin", host.WithArgs("--mode", "fast"))
	th, err := host.Dispense[contract.Thing](c, "args")
	if err != nil {
		t.Fatal(err)
	}
	if got := th.Name(); got != "--mode fast" {
		t.Errorf("the plugin's arguments are %q, want %q", got, "--mode fast")
	}
}

func TestDispenseErrors(t *testing.T) {
	c := load(t, "svcplugin")
	check := func(what string, err error, wants ...string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", what, err, w)
			}
		}
	}
	_, err := host.Dispense[contract.Service](c, "nope")
	check("unknown name", err, `"nope"`, `["args" "svc"]`)
	_, err = host.Dispense[contract.BadService](c, "svc")
	check("chan parameter", err, "BadService.Watch", "parameter 1", "chan int cannot cross", "hint")
	_, err = host.Dispense[contract.UsesUnregistered](c, "svc")
	check("unregistered interface", err, "no proxy registered for interface contract.Unregistered", "RegisterInterface")
	_, err = host.Dispense[contract.Mismatched](c, "svc")
	check("mismatched contract", err, "does not implement contract.Mismatched", "missing method Missing",
		"Echo is func(contract.Doc) (contract.Doc, error) here, func(contract.Doc, int) (contract.Doc, error) on the other side")
	_, err = host.Dispense[contract.Doc](c, "svc")
	check("not an interface", err, "not an interface type")
	// The connection is still good after all that.
	if n, err := dispenseSvc(t, c).Sum(2, 3); err != nil || n != 5 {
		t.Errorf("Sum after failed dispenses = %d, %v", n, err)
	}
}

func TestLoadErrors(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "plain.txt")
	if err := os.WriteFile(notExec, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		want       string
	}{
		{"missing file", filepath.Join(bin, "no-such-plugin"), "no such file"},
		{"directory", bin, "is a directory"},
		{"not executable", notExec, "not executable"},
		{"exits at once", filepath.Join(bin, "exits"), "plugin.Serve"},
		{"never handshakes", filepath.Join(bin, "hangs"), "timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			cl, err := host.Load(c.path, host.WithLogger(testLogger(t)), host.WithStartTimeout(2*time.Second))
			if err == nil {
				cl.Close()
				t.Fatalf("Load(%s) succeeded", c.path)
			}
			t.Logf("Load error: %v", err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load(%s) = %v; want it to mention %q", c.path, err, c.want)
			}
			if el := time.Since(start); el > 15*time.Second {
				t.Errorf("Load(%s) took %v; it must fail within the start timeout", c.path, el)
			}
		})
	}
}

func TestCloseDisconnects(t *testing.T) {
	c := load(t, "svcplugin")
	svc := dispenseSvc(t, c)
	counter, err := svc.NewCounter("c")
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan error, 1)
	go func() { hung <- svc.Hang(context.Background()) }()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-hung:
		if !errors.Is(err, refbroker.ErrDisconnected) {
			t.Errorf("pending Hang after Close = %v; want ErrDisconnected", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call pending at Close did not return")
	}
	if _, err := svc.Sum(1); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("Sum after Close = %v; want ErrDisconnected", err)
	}
	if _, err := counter.Add(1); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("Add after Close = %v; want ErrDisconnected", err)
	}
	if !c.Exited() {
		t.Errorf("the plugin process is still running after Close")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestPluginCrash(t *testing.T) {
	c := load(t, "svcplugin")
	svc := dispenseSvc(t, c)
	hung := make(chan error, 1)
	go func() { hung <- svc.Hang(context.Background()) }()
	if err := svc.Exit(3); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("Exit = %v; want ErrDisconnected", err)
	}
	select {
	case err := <-hung:
		if !errors.Is(err, refbroker.ErrDisconnected) {
			t.Errorf("pending Hang after the crash = %v; want ErrDisconnected", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call pending when the plugin died did not return")
	}
	if _, err := svc.Sum(1); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("Sum after the crash = %v; want ErrDisconnected", err)
	}
	scenario.Eventually(t, "the plugin process to be reaped", c.Exited)
	// The same binary loads again.
	if n, err := dispenseSvc(t, load(t, "svcplugin")).Sum(4, 5); err != nil || n != 9 {
		t.Errorf("after a crash, a new Load: Sum = %d, %v", n, err)
	}
}
