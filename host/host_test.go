package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/refplug/refplug/internal/testutil"

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
	// A -race binary sleeps a second at exit to gather reports; the test
	// plugins are timed on exit, so they skip that sleep.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "../testdata/svcplugin", "../testdata/hangs", "../testdata/exits",
		"../testdata/hostproc", "../testdata/stubborn", "../testdata/skewplugin", "../testdata/versioned", "../testdata/remoteplugin",
		"../testdata/spawner", "../testdata/silent", "../testdata/empty",
		"../testdata/evolve/plugin1", "../testdata/evolve/plugin2", "../testdata/evolve/plugin3", "../testdata/webplugin", "../testdata/bigplugin",
		"../testdata/mutegp", "../testdata/floodgp")
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

func load(t *testing.T, name string, opts ...host.Option) *host.Client {
	t.Helper()
	c, err := host.Load(filepath.Join(bin, name), append([]host.Option{host.WithLogger(testutil.Logger(t, "host"))}, opts...)...)
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

// transports are the two ways a loaded plugin's traffic travels: the
// default private socket pair, and a go-plugin broker stream.
var transports = []struct {
	name string
	opts []host.Option
}{
	{"socketpair", nil},
	{"muxbroker", []host.Option{host.WithMuxBroker()}},
}

// loadOn loads a plugin on the named transport and checks that it is the
// one in use.
func loadOn(t *testing.T, transport string, name string, opts ...host.Option) *host.Client {
	t.Helper()
	for _, tr := range transports {
		if tr.name == transport {
			opts = append(opts, tr.opts...)
		}
	}
	c := load(t, name, opts...)
	if got := c.Transport(); got != transport {
		t.Fatalf("Transport() = %q; want %q", got, transport)
	}
	return c
}

// TestScenariosPluginProcess runs every broker scenario against a real
// plugin process, on each transport.
func TestScenariosPluginProcess(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := loadOn(t, tr.name, "svcplugin")
			scenario.Run(t, dispenseSvc(t, c))
		})
	}
}

// TestSocketLostOnTheWay: a plugin started through a wrapper that closes
// the descriptor of its private socket still works, over a broker stream,
// and the host's log says why.
func TestSocketLostOnTheWay(t *testing.T) {
	wrapper := closingWrapper(t, "svcplugin")
	var buf testutil.Buffer
	c, err := host.Load(wrapper, host.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: &buf})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Transport(); got != "muxbroker" {
		t.Errorf("Transport() = %q; want muxbroker", got)
	}
	if n, err := dispenseSvc(t, c).Apply(func(x int) int { return x + 1 }, 41); err != nil || n != 42 {
		t.Errorf("Apply = %d, %v; want 42", n, err)
	}
	log := buf.String()
	if !strings.Contains(log, "could not take its private socket") || !strings.Contains(log, "descriptor 3") {
		t.Errorf("the host's log does not say why the socket was not used:\n%s", log)
	}
}

// closingWrapper writes a script that starts the test plugin name with
// descriptor 3 closed, as a wrapper between host and plugin might, and
// returns its path; it skips the test without sh.
func closingWrapper(t *testing.T, name string) string {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh for the wrapper script")
	}
	wrapper := filepath.Join(t.TempDir(), "wrapper")
	script := fmt.Sprintf("#!/bin/sh\nexec %q \"$@\" 3<&-\n", filepath.Join(bin, name))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

// TestLaunchControl: WithCmd adjusts the command (directory,
// environment: a variable it sets wins over the host's of the same name),
// WithoutHostEnv leaves the host's environment out, and Attach refuses
// the options that concern a process it does not start.
func TestLaunchControl(t *testing.T) {
	t.Setenv("REFPLUG_TEST_VAR", "the host's")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	adjust := host.WithCmd(func(cmd *exec.Cmd) {
		cmd.Dir = dir
		cmd.Env = append(cmd.Env, "REFPLUG_TEST_VAR=x")
		cmd.SysProcAttr = nil // refplug keeps its process group
	})
	for _, c := range []struct {
		name string
		opts []host.Option
		want string
	}{
		{"WithCmd", []host.Option{adjust}, fmt.Sprintf("dir=%s var=x path=true", dir)},
		{"WithCmd and WithoutHostEnv", []host.Option{adjust, host.WithoutHostEnv()}, fmt.Sprintf("dir=%s var=x path=false", dir)},
		{"the host's environment", nil, fmt.Sprintf("dir=%s var=the host's path=true", wd)},
		{"WithCmd replacing it whole", []host.Option{host.WithCmd(func(cmd *exec.Cmd) {
			cmd.Dir = dir
			cmd.Env = []string{"REFPLUG_TEST_VAR=y"}
		})}, fmt.Sprintf("dir=%s var=y path=false", dir)},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := load(t, "svcplugin", c.opts...)
			th, err := host.Dispense[contract.Thing](cl, "launch")
			if err != nil {
				t.Fatal(err)
			}
			if got := th.Name(); got != c.want {
				t.Errorf("the plugin was started with %q; want %q", got, c.want)
			}
		})
	}
	_, err = host.Attach("127.0.0.1:1", host.WithArgs("x"), host.WithChecksum([]byte{1}), host.WithLogger(testutil.Logger(t, "host")))
	if err == nil || !strings.Contains(err.Error(), "WithArgs, WithChecksum apply only to a plugin this host starts with Load") {
		t.Errorf("Attach with process options = %v; want them named and refused", err)
	}
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
	check("unregistered interface", err, "no proxy registered for interface contract.Unregistered", "refgen", "RegisterInterface")
	_, err = host.Dispense[contract.Mismatched](c, "svc")
	check("mismatched contract", err, `object "svc" (*contract.service) does not implement contract.Mismatched`, "missing method Missing",
		"Echo is func(contract.Doc) (contract.Doc, error) in the object, func(contract.Doc, int) (contract.Doc, error) in contract.Mismatched")
	_, err = host.Dispense[contract.Doc](c, "svc")
	check("not an interface", err, "not an interface type")
	// Extra methods on the plugin's side are fine: Service has NewCounter
	// and much more; Factory asks only for NewCounter.
	if f, err := host.Dispense[contract.Factory](c, "svc"); err != nil {
		t.Errorf("Dispense of a narrower interface: %v", err)
	} else if _, err := f.NewCounter("n"); err != nil {
		t.Errorf("NewCounter through the narrower interface: %v", err)
	}
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
		want       []string
		opts       []host.Option
	}{
		{"missing file", filepath.Join(bin, "no-such-plugin"), []string{"no such file"}, nil},
		{"directory", bin, []string{"is a directory"}, nil},
		{"not executable", notExec, []string{"not executable"}, nil},
		{"exits at once", filepath.Join(bin, "exits"), []string{"exited with status 2", "exits: I am not a plugin"}, nil},
		{"another cookie", filepath.Join(bin, "versioned"), []string{"exited with status 1", "This binary is a plugin", "handshake cookie"}, nil},
		{"nothing to serve", filepath.Join(bin, "empty"), []string{"exited with status 1", "plugin: Serve was given no objects to serve"}, nil},
		{"protocol versions Serve cannot take", filepath.Join(bin, "empty"), []string{"exited with status 1", "WithProtocolVersion(0): protocol versions start at 1", "WithVersion(-2, …): protocol versions start at 1", "WithVersion(1, …): version 1 is the objects given to Serve", "WithMaxMessageSize(-1): a limit cannot be negative (0 means the default, 64 MiB)"}, []host.Option{host.WithCmd(func(cmd *exec.Cmd) {
			cmd.Env = append(cmd.Env, "REFPLUG_TEST_BAD_VERSIONS=1")
		})}},
		{"a line on stdout before Serve", filepath.Join(bin, "empty"), []string{`its first line on stdout, "starting my plugin v1.2", is not go-plugin's handshake line`, "write nothing to stdout before plugin.Serve"}, []host.Option{host.WithCmd(func(cmd *exec.Cmd) {
			cmd.Env = append(cmd.Env, "REFPLUG_TEST_STDOUT_FIRST=1")
		})}},
		{"protocol versions Load cannot take", filepath.Join(bin, "svcplugin"), []string{"WithVersions(2, 0, -1): protocol versions start at 1"}, []host.Option{host.WithVersions(2, 0, -1)}},
		{"limits Load cannot take", filepath.Join(bin, "svcplugin"), []string{"WithMaxQueuedBytes(-1): a limit cannot be negative (0 means the default, 16 MiB)", "WithCallTimeout(-1s): a timeout cannot be negative"}, []host.Option{host.WithMaxQueuedBytes(-1), host.WithCallTimeout(-time.Second)}},
		{"a value whose methods need a pointer", filepath.Join(bin, "empty"), []string{"exited with status 1", `the object named "counter": main.counter has no methods`, "(Add) have pointer receivers", "serve &value"}, []host.Option{host.WithCmd(func(cmd *exec.Cmd) {
			cmd.Env = append(cmd.Env, "REFPLUG_TEST_VALUE_ROOT=1")
		})}},
		{"objects without methods", filepath.Join(bin, "empty"), []string{"exited with status 1", `the object named "config": struct { Name string } has no methods, so nothing can be dispensed from it`, `the object named "events": chan int has no methods`}, []host.Option{host.WithCmd(func(cmd *exec.Cmd) {
			cmd.Env = append(cmd.Env, "REFPLUG_TEST_NO_METHODS=1")
		})}},
		// What the plugin wrote to stderr is quoted with its control
		// characters and broken UTF-8 escaped (checked below too).
		{"control characters on stderr", filepath.Join(bin, "exits"), []string{"exited with status 2", `\x1b[2J\x1b[31mred\x1b[0m and a NUL \x00 and \xff\xfe, a bell\x07`, `exits: I am not a plugin\x1b]0;title\x07`}, []host.Option{host.WithCmd(func(cmd *exec.Cmd) {
			cmd.Env = append(cmd.Env, "REFPLUG_TEST_RAW_STDERR=1")
		})}},
		{"never handshakes", filepath.Join(bin, "hangs"), []string{"timeout"}, nil},
		// go-plugin refuses the handshake line and the host kills the
		// process: the error says why, not "signal: killed".
		{"no version in common", filepath.Join(bin, "svcplugin"), []string{"incompatible API version", "Plugin version: 1", "Client versions: [7]", "WithVersions", "its process was killed"}, []host.Option{host.WithVersions(7)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// At the default level (Info): the error must say it all, and a
			// failed start logs no warning or error, nor go-plugin's
			// "plugin process exited" with the status the error gives.
			var logs testutil.Buffer
			start := time.Now()
			cl, err := host.Load(c.path, append([]host.Option{host.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs})), host.WithStartTimeout(2 * time.Second)}, c.opts...)...)
			if err == nil {
				cl.Close()
				t.Fatalf("Load(%s) succeeded", c.path)
			}
			t.Logf("Load error: %v", err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%s) = %v; want it to mention %q", c.path, err, w)
				}
			}
			if i := strings.IndexFunc(err.Error(), func(r rune) bool { return r == utf8.RuneError || r != '\n' && r != '\t' && unicode.IsControl(r) }); i >= 0 {
				t.Errorf("Load(%s)'s error holds %q at byte %d: a control character or a byte that is not UTF-8", c.path, err.Error()[i:min(i+4, len(err.Error()))], i)
			}
			if strings.Contains(logs.String(), "[WARN]") || strings.Contains(logs.String(), "[ERROR]") || strings.Contains(logs.String(), "plugin process exited") {
				t.Errorf("a failed start logged a warning, an error or the exit:\n%s", logs.String())
			}
			if el := time.Since(start); el > 15*time.Second {
				t.Errorf("Load(%s) took %v; it must fail within the start timeout", c.path, el)
			}
		})
	}
}

func TestCloseDisconnects(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testCloseDisconnects(t, loadOn(t, tr.name, "svcplugin")) })
	}
}

func testCloseDisconnects(t *testing.T, c *host.Client) {
	svc := dispenseSvc(t, c)
	counter, err := svc.NewCounter("c")
	if err != nil {
		t.Fatal(err)
	}
	named, err := host.Dispense[contract.Thing](c, "args") // Name has no error result
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan error, 1)
	go func() { hung <- svc.Hang(context.Background()) }()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// A method without an error result returns zero values; nothing panics.
	if got := named.Name(); got != "" {
		t.Errorf("Name after Close = %q, want the zero value", got)
	}
	err = testutil.Receive(t, hung, 10*time.Second, "a call pending at Close did not return")
	if !errors.Is(err, refbroker.ErrDisconnected) || !strings.Contains(err.Error(), "closed by this side") {
		t.Errorf("pending Hang after Close = %v; want ErrDisconnected, closed by this side", err)
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
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testPluginCrash(t, tr.name) })
	}
}

func testPluginCrash(t *testing.T, transport string) {
	goroutines := runtime.NumGoroutine()
	c := loadOn(t, transport, "svcplugin")
	svc := dispenseSvc(t, c)
	hung := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		hung <- svc.Hang(context.Background())
	}()
	<-started
	testutil.Eventually(t, "the Hang call to be pending", func() bool { return c.Stats().Pending == 1 })
	if err := svc.Exit(3); !errors.Is(err, refbroker.ErrDisconnected) || strings.Contains(err.Error(), "by this side") {
		t.Errorf("Exit = %v; want ErrDisconnected, the plugin gone", err)
	}
	if !c.Exited() {
		t.Error("Exited() = false after a call failed with ErrDisconnected because the plugin died")
	}
	died := time.Now()
	err := testutil.Receive(t, hung, 10*time.Second, "a call pending when the plugin died did not return")
	if !errors.Is(err, refbroker.ErrDisconnected) || !strings.Contains(err.Error(), "went away") {
		t.Errorf("pending Hang after the crash = %v; want ErrDisconnected, saying the plugin went away", err)
	}
	if el := time.Since(died); el > time.Second {
		t.Errorf("the pending call failed %v after the crash; the promise is 1s", el)
	}
	if s := c.Stats(); !scenario.Empty(s) {
		t.Errorf("host tables after the crash: %+v; want empty", s)
	}
	if _, err := svc.Sum(1); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("Sum after the crash = %v; want ErrDisconnected", err)
	}
	// A failure is never a success: an error-like result carries it.
	if u, ae := svc.GetUser("known"); u != nil || ae == nil || ae.Status != 500 || !strings.Contains(ae.Message, "disconnected") {
		t.Errorf("GetUser after the crash = %+v, %v; want a 500 *AppError saying the plugin is gone", u, ae)
	}
	testutil.Eventually(t, "the plugin process to be reaped", c.Exited)
	if st, exited := c.ExitStatus(); !exited || st == nil || st.ExitCode() != 3 {
		t.Errorf("ExitStatus after Exit(3) = %v, %v; want exit code 3", st, exited)
	}
	c.Close()
	testutil.Eventually(t, "host goroutines to return to baseline", func() bool {
		return runtime.NumGoroutine() <= goroutines
	})
	// The same binary loads again.
	if n, err := dispenseSvc(t, loadOn(t, transport, "svcplugin")).Sum(4, 5); err != nil || n != 9 {
		t.Errorf("after a crash, a new Load: Sum = %d, %v", n, err)
	}
}

// TestHostKilled: a plugin whose host dies by SIGKILL exits by itself.
func TestHostKilled(t *testing.T) {
	cmd, pid := startHostProc(t, "svcplugin")
	if !alive(pid) {
		t.Fatalf("plugin %d is not running while its host is", pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()
	testutil.Eventually(t, "the orphaned plugin to exit", func() bool { return !alive(pid) })
	if el := time.Since(killed); el > 2*time.Second {
		t.Errorf("the plugin outlived its SIGKILLed host by %v; the promise is 2s", el)
	}
}

// startHostProc starts testdata/hostproc, a host loading the named plugin,
// and returns it and the plugin's process ID.
func startHostProc(t *testing.T, plugin string) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "hostproc"), filepath.Join(bin, plugin))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testutil.Writer{T: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscanln(out, &pid); err != nil {
		cmd.Process.Kill()
		t.Fatalf("reading the plugin's pid from the host: %v", err)
	}
	return cmd, pid
}

// readPid waits for a test program to write a process ID to file
// (REFPLUG_TEST_PIDFILE).
func readPid(t *testing.T, file string) int {
	t.Helper()
	var pid int
	testutil.Eventually(t, "the spawner to name its helper", func() bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(string(b))
		return err == nil && pid > 0
	})
	return pid
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	st := procState(pid)
	return st != 0 && st != 'Z'
}

// procState is pid's state letter in /proc (R, S, T, Z…), 0 if there is
// no such process.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// TestStubbornPluginKilled: a plugin that ignores the request to exit is
// killed by Close.
func TestStubbornPluginKilled(t *testing.T) {
	c := load(t, "stubborn")
	svc := dispenseSvc(t, c)
	pid, err := svc.Pid()
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan error, 1)
	go func() { hung <- svc.Hang(context.Background()) }()
	testutil.Eventually(t, "the Hang call to be pending", func() bool { return c.Stats().Pending == 1 })
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	// The pending call fails at once, though the plugin takes a while to die.
	select {
	case err := <-hung:
		if !errors.Is(err, refbroker.ErrDisconnected) {
			t.Errorf("pending Hang at Close = %v", err)
		}
	case <-closed:
		t.Errorf("Close returned before the pending call failed")
	}
	start := time.Now()
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Close took %v", el)
	}
	if !c.Exited() {
		t.Errorf("the stubborn plugin is still running after Close")
	}
	testutil.Eventually(t, "the stubborn plugin's process to be gone", func() bool { return !alive(pid) })
}

// TestStressPluginProcess: goroutines mixing every kind of call against a
// real plugin; then both sides' tables and goroutines return to baseline.
// With 64 callers, calls wait behind one another and the reader goroutine
// hands each its return; with one (and the bulk goroutine beside it), the
// caller mostly reads its own returns (refbroker/callerread.go), taking
// and giving back the reader role between callbacks, cancelled contexts
// and megabyte frames.
func TestStressPluginProcess(t *testing.T) {
	for _, tc := range scenario.StressCallers {
		t.Run(tc.Name, func(t *testing.T) { stressPluginProcess(t, tc.Callers) })
	}
}

func stressPluginProcess(t *testing.T, callers int) {
	goroutines := runtime.NumGoroutine()
	c := load(t, "svcplugin")
	svc := dispenseSvc(t, c)
	host.AwaitGoPluginConnection(c) // the plugin's goroutines for go-plugin's connection are there
	before, err := svc.Health()
	if err != nil {
		t.Fatal(err)
	}
	d := scenario.StressDuration(t)
	res := scenario.Stress(t, svc, callers, d)
	var after contract.Health
	testutil.Eventually(t, "both sides' tables to return to baseline", func() bool {
		runtime.GC()
		var err error
		after, err = svc.Health()
		hs := c.Stats()
		ok := err == nil && hs.Exports == 0 && hs.Imports == 1 && hs.Pending == 0 &&
			after.Stats.Exports == 1 && after.Stats.Imports == 0 && after.Goroutines <= before.Goroutines
		if !ok {
			t.Logf("not yet: host %+v; plugin %+v (goroutines before %d); %v", hs, after, before.Goroutines, err)
		}
		return ok
	})
	hs := c.Stats()
	c.Close()
	testutil.Eventually(t, "host goroutines to return to baseline", func() bool {
		return runtime.NumGoroutine() <= goroutines
	})
	t.Logf("plugin-process stress: %d caller(s) for %v: %d iterations (%d large), %d failures; host made %d calls, served %d callbacks; "+
		"host exports created/dropped %d/%d, imports created/released %d/%d; plugin exports created/dropped %d/%d, imports created/released %d/%d; "+
		"plugin goroutines before %d, after %d; host goroutines before %d, after %d",
		callers, d, res.Iterations, res.Bulk, res.Failures, hs.CallsMade, hs.CallsServed, hs.ExportsCreated, hs.ExportsDropped, hs.ImportsCreated, hs.ImportsReleased,
		after.Stats.ExportsCreated, after.Stats.ExportsDropped, after.Stats.ImportsCreated, after.Stats.ImportsReleased,
		before.Goroutines, after.Goroutines, goroutines, runtime.NumGoroutine())
}

// TestReleaseDropsPluginExport: releasing (or dropping) a proxy in the host
// frees the object in the plugin's export table.
func TestReleaseDropsPluginExport(t *testing.T) {
	c := load(t, "svcplugin")
	svc := dispenseSvc(t, c)
	base, err := svc.Health()
	if err != nil {
		t.Fatal(err)
	}
	counter, err := svc.NewCounter("x")
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := svc.Health(); h.Stats.Exports != base.Stats.Exports+1 {
		t.Fatalf("plugin exports after NewCounter = %d, want %d", h.Stats.Exports, base.Stats.Exports+1)
	}
	if err := refbroker.Release(counter); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the plugin to drop the released counter", func() bool {
		h, err := svc.Health()
		return err == nil && h.Stats.Exports == base.Stats.Exports
	})
	for i := range 50 { // dropped without Release: collected, then released
		if _, err := svc.NewCounter(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "the plugin to drop collected counters", func() bool {
		runtime.GC()
		h, err := svc.Health()
		return err == nil && h.Stats.Exports == base.Stats.Exports
	})
}

// TestMessageLimitPluginProcess: a message over the limit fails its call
// with a clear error, and the plugin keeps serving.
func TestMessageLimitPluginProcess(t *testing.T) {
	c := load(t, "svcplugin", host.WithMaxMessageSize(1<<20))
	svc := dispenseSvc(t, c)
	_, err := svc.Echo(contract.Doc{Body: make([]byte, 2<<20)})
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit of 1048576") {
		t.Errorf("Echo(2 MiB) = %v; want the limit named", err)
	}
	out, err := svc.Echo(contract.Doc{Body: make([]byte, 512<<10)})
	if err != nil || len(out.Body) != 512<<10 {
		t.Errorf("Echo(512 KiB) = %d bytes, %v", len(out.Body), err)
	}
}

// TestMegabytesKept: a host that keeps some of many megabyte results
// of a plugin and drops the others, with collections between (the frames
// of dropped ones are read into again, on both sides): what it kept
// never changes.
func TestMegabytesKept(t *testing.T) {
	c := load(t, "svcplugin")
	svc := dispenseSvc(t, c)
	kept := map[byte][]byte{}
	body := make([]byte, 1<<20)
	for i := range 40 {
		v := byte(i)
		for j := range body {
			body[j] = v
		}
		out, err := svc.Echo(contract.Doc{ID: fmt.Sprint(i), Body: body})
		if err != nil {
			t.Fatalf("Echo(%d): %v", i, err)
		}
		if !bytes.Equal(out.Body, body) || out.ID != fmt.Sprint(i) {
			t.Fatalf("Echo(%d) came back as %q with %d bytes, not the megabyte sent", i, out.ID, len(out.Body))
		}
		if i%3 == 0 {
			kept[v] = out.Body
		}
		if i%5 == 4 {
			runtime.GC()
		}
	}
	runtime.GC()
	for v, b := range kept {
		if !bytes.Equal(b, bytes.Repeat([]byte{v}, 1<<20)) {
			t.Errorf("the body of Echo(%d), kept by the host, changed", v)
		}
	}
}

// TestVersionSkewNested: a plugin built from an older contract passes the
// Dispense check (its root's signature is the same text), but the Counter
// it returns does not fit this side's Counter: the call fails at once,
// naming every difference.
func TestVersionSkewNested(t *testing.T) {
	c := load(t, "skewplugin")
	f, err := host.Dispense[contract.Factory](c, "factory")
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	_, err = f.NewCounter("x")
	for _, want := range []string{
		"other side's contract.Counter arrived as contract.Counter",
		"Add is func(int64) (int64, error) there, func(int) (int, error) here",
		"missing method Child",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewCounter from an older plugin = %v; want it to say %q", err, want)
		}
	}
	if strings.Contains(fmt.Sprint(err), "Label") {
		t.Errorf("Label matches and must not be listed: %v", err)
	}
}

// TestVersionsAndHandshake: the host and plugin agree on the highest
// protocol version both support, and a plugin built with another cookie is
// not loaded.
func TestVersionsAndHandshake(t *testing.T) {
	cookie := host.WithHandshake("REFPLUG_TEST_COOKIE", "versioned")
	for _, c := range []struct {
		versions []int
		want     string
	}{
		{[]int{1}, "version 1"},
		{[]int{1, 2}, "version 2"},
		{[]int{2, 3}, "version 2"},
	} {
		cl := load(t, "versioned", cookie, host.WithVersions(c.versions...))
		th, err := host.Dispense[contract.Thing](cl, "thing")
		if err != nil {
			t.Fatal(err)
		}
		if got := th.Name(); got != c.want || fmt.Sprint("version ", cl.Version()) != c.want {
			t.Errorf("host versions %v: the plugin serves %q at version %d; want %q", c.versions, got, cl.Version(), c.want)
		}
		cl.Close()
	}
	if cl, err := host.Load(filepath.Join(bin, "versioned"), cookie, host.WithVersions(3), host.WithLogger(testutil.Logger(t, "host"))); err == nil {
		cl.Close()
		t.Errorf("a host supporting only version 3 loaded a plugin serving 1 and 2")
	}
	// A plugin that serves versions 2 and 3 only.
	only23 := host.WithArgs("2-3")
	for _, c := range []struct {
		versions []int
		want     string
	}{
		{[]int{1, 2}, "version 2"},
		{[]int{2, 3}, "version 3"},
		{[]int{3}, "version 3"},
	} {
		cl := load(t, "versioned", cookie, only23, host.WithVersions(c.versions...))
		th, err := host.Dispense[contract.Thing](cl, "thing")
		if err != nil {
			t.Fatal(err)
		}
		if got := th.Name(); got != c.want || fmt.Sprint("version ", cl.Version()) != c.want {
			t.Errorf("host versions %v, plugin 2 and 3: the plugin serves %q at version %d; want %q", c.versions, got, cl.Version(), c.want)
		}
		cl.Close()
	}
	if cl, err := host.Load(filepath.Join(bin, "versioned"), cookie, only23, host.WithLogger(testutil.Logger(t, "host"))); err == nil {
		cl.Close()
		t.Errorf("a host supporting only version 1 loaded a plugin serving 2 and 3")
	}
	// Without the plugin's cookie the plugin refuses to start.
	if cl, err := host.Load(filepath.Join(bin, "versioned"), host.WithLogger(testutil.Logger(t, "host"))); err == nil {
		cl.Close()
		t.Errorf("a plugin with another handshake cookie was loaded")
	}
}

func TestChecksum(t *testing.T) {
	path := filepath.Join(bin, "svcplugin")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	c := load(t, "svcplugin", host.WithChecksum(sum[:]))
	if n, err := dispenseSvc(t, c).Sum(1, 1); err != nil || n != 2 {
		t.Errorf("Sum with a verified binary = %d, %v", n, err)
	}
	sum[0] ^= 0xff
	cl, err := host.Load(path, host.WithChecksum(sum[:]), host.WithLogger(testutil.Logger(t, "host")))
	if err == nil {
		cl.Close()
		t.Fatal("a binary with another checksum was loaded")
	}
	if !strings.Contains(err.Error(), "checksum") {
		t.Errorf("Load with a wrong checksum = %v; want the checksum named", err)
	}
}

// TestAutoMTLS: calls and callbacks work with AutoMTLS (the default) and
// without it.
func TestAutoMTLS(t *testing.T) {
	for _, on := range []bool{true, false} {
		c := load(t, "svcplugin", host.WithAutoMTLS(on))
		svc := dispenseSvc(t, c)
		if n, err := svc.Apply(func(x int) int { return x * 10 }, 4); err != nil || n != 40 {
			t.Errorf("AutoMTLS %v: Apply = %d, %v", on, n, err)
		}
		c.Close()
	}
}

// TestPluginLogsForwarded: a plugin's log entries, with their level and
// fields, appear in the host's logger under the plugin's name; a panic's
// stack arrives at error level.
func TestPluginLogsForwarded(t *testing.T) {
	var buf testutil.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Name: "app", Level: hclog.Info, Output: &buf})
	c, err := host.Load(filepath.Join(bin, "svcplugin"), host.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc := dispenseSvc(t, c)
	svc.Panic("kaboom")
	testutil.Eventually(t, "the plugin's log entry", func() bool {
		s := buf.String()
		return strings.Contains(s, "[ERROR] app.svcplugin: panic in a method called by the other side") &&
			strings.Contains(s, "panic=kaboom") && strings.Contains(s, "stack=") && strings.Contains(s, "service.go")
	})
}

func TestDescribeAndCallJSON(t *testing.T) {
	c := load(t, "svcplugin")
	infos, err := c.Describe()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var sum, upload string
	for _, o := range infos {
		names = append(names, o.Name+" "+o.Type)
		for _, m := range o.Methods {
			switch {
			case o.Name == "svc" && m.Name == "Sum":
				sum = m.Signature
			case o.Name == "svc" && m.Name == "Upload":
				upload = m.Signature
			}
		}
	}
	if fmt.Sprint(names) != "[args main.args svc *contract.service]" || sum != "func(...int) (int, error)" || upload != "func(context.Context, []byte) (int, error)" {
		t.Errorf("Describe = %v, Sum is %q, Upload is %q", names, sum, upload)
	}
	for _, c2 := range []struct {
		method string
		args   []string
		want   string
		err    string
	}{
		{"Sum", []string{"[1,2,3]"}, "[6]", ""},
		{"Lookup", []string{`"answer"`}, `["42"]`, ""},
		{"Lookup", []string{`"missing"`}, "", `lookup "missing": contract: not found`},
		{"Echo", []string{`{"ID":"x","Tags":["a"],"Loc":{"X":1,"Y":2}}`}, "", "result 1 (contract.Doc) cannot be shown as JSON (it holds a func, channel or complex number); the method was not called"},
		{"EchoAny", []string{`{"ID":"x","Tags":["a"],"Loc":{"X":1,"Y":2}}`}, `[{"ID":"x","Loc":{"X":1,"Y":2},"Tags":["a"]}]`, ""},
		{"Deadline", nil, "[0,false]", ""},
		{"Apply", []string{"null", "1"}, "", "argument 1 (func(int) int) cannot be given as JSON"},
		{"Sum", nil, "", "takes 1 argument (func(...int) (int, error)), got 0"},
		{"Wait", nil, "", "takes 1 argument (func(context.Context, func()) error; its context is supplied), got 0"},
		{"Lookup", []string{"7"}, "", "argument 1 (string): json: cannot unmarshal number"},
		{"After", []string{`"1.5s"`}, `["1.5s"]`, ""},
		{"After", []string{"2000000000"}, `["2s"]`, ""},
		{"Upload", []string{`"aGk="`}, "[2]", ""},
		{"OpenBlob", []string{"3"}, `[{"object":"contract.Blob","type":"contract.blob","methods":["Close","Read","ReadAt","ReadChunk","Scribble","Size"]}]`, ""},
		{"Files", []string{"0"}, `[{"object":"fs.FS","type":"fstest.MapFS","methods":["Open"]}]`, ""},
		{"Nope", nil, "", "has no method Nope"},
	} {
		var raw []json.RawMessage
		for _, a := range c2.args {
			raw = append(raw, json.RawMessage(a))
		}
		res, err := c.CallJSON("svc", c2.method, raw...)
		got := "["
		for i, r := range res {
			if i > 0 {
				got += ","
			}
			got += string(r)
		}
		got += "]"
		switch {
		case c2.err != "" && (err == nil || !strings.Contains(err.Error(), c2.err)):
			t.Errorf("CallJSON(%s, %v) = %s, %v; want an error containing %q", c2.method, c2.args, got, err, c2.err)
		case c2.err == "" && (err != nil || !strings.HasPrefix(got, c2.want)):
			t.Errorf("CallJSON(%s, %v) = %s, %v; want %s", c2.method, c2.args, got, err, c2.want)
		}
	}
}

// TestConcurrencyLimitPluginProcess: a host limited to 8 concurrent calls
// from its plugin refuses the rest of the plugin's flood of callbacks.
func TestConcurrencyLimitPluginProcess(t *testing.T) {
	c := load(t, "svcplugin", host.WithMaxConcurrentCalls(8))
	scenario.ConcurrencyLimit(t, dispenseSvc(t, c), 8, c.Stats)
}

// TestPluginOutput: what plugin code writes to stdout and stderr, not
// through a logger, reaches the host: into its log by default, or into
// the writers WithStdout and WithStderr give.
func TestPluginOutput(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []host.Option
	}{{"defaults", nil}, {"without TLS", []host.Option{host.WithAutoMTLS(false)}}} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut testutil.Buffer
			c := load(t, "svcplugin", append([]host.Option{host.WithStdout(&out), host.WithStderr(&errOut)}, tc.opts...)...)
			if err := dispenseSvc(t, c).Print("hello"); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, "the plugin's output to arrive", func() bool {
				return strings.Contains(out.String(), "hello\n") && strings.Contains(errOut.String(), "err: hello\n")
			})

			var logs testutil.Buffer
			c = load(t, "svcplugin", append([]host.Option{host.WithLogger(hclog.New(&hclog.LoggerOptions{Name: "app", Level: hclog.Info, Output: &logs}))}, tc.opts...)...)
			if err := dispenseSvc(t, c).Print("to the log"); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, "the plugin's output in the host's log", func() bool {
				s := logs.String()
				return strings.Contains(s, "[INFO]  app.svcplugin: to the log: stream=stdout") &&
					strings.Contains(s, "[INFO]  app.svcplugin: err: to the log: stream=stderr")
			})
		})
	}
}

// TestPluginSlog: what a plugin logs through log/slog's default logger,
// or the standard log package, reaches the host's logger with its level
// and attributes (go-plugin logs lines that are not hclog's JSON at debug
// level, where a host at Info never showed them), at the host's level;
// a plugin that set its own default logger keeps it.
func TestPluginSlog(t *testing.T) {
	for _, level := range []hclog.Level{hclog.Debug, hclog.Info} {
		t.Run(level.String(), func(t *testing.T) {
			var logs testutil.Buffer
			c := load(t, "svcplugin", host.WithLogger(hclog.New(&hclog.LoggerOptions{Name: "app", Level: level, Output: &logs})))
			defer func() {
				if t.Failed() {
					t.Logf("the host's log:\n%s", logs.String())
				}
			}()
			if err := dispenseSvc(t, c).Logs("m"); err != nil {
				t.Fatal(err)
			}
			// An entry: its level and message, then its fields, in any
			// order (go-plugin reads them into a map).
			type entry struct {
				head   string
				fields []string
			}
			want := []entry{
				{"[INFO]  app.svcplugin: m: ", []string{"n=2", "grp.a=true"}},
				{"[WARN]  app.svcplugin: m: ", nil},
				{"[ERROR] app.svcplugin: m: ", []string{"svc=1", "g.err=boom"}},
				{"[INFO]  app.svcplugin: m via log: ", nil},
			}
			if level == hclog.Debug {
				want = append(want, entry{"[DEBUG] app.svcplugin: m: ", []string{"svc=1", "g.at=debug"}})
			}
			has := func(lines []string, e entry) bool {
				for _, l := range lines {
					if _, rest, ok := strings.Cut(l, e.head); ok && !strings.HasPrefix(rest, "timestamp=") == (len(e.fields) > 0) {
						got := strings.Fields(rest)
						if len(got) == len(e.fields)+1 && !slices.ContainsFunc(e.fields, func(f string) bool { return !slices.Contains(got, f) }) {
							return true
						}
					}
				}
				return false
			}
			testutil.Eventually(t, "the plugin's slog records in the host's log", func() bool {
				lines := strings.Split(logs.String(), "\n")
				for _, e := range want {
					if !has(lines, e) {
						return false
					}
				}
				return true
			})
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if level == hclog.Info && strings.Contains(logs.String(), "[DEBUG]") {
				t.Errorf("a host at Info got debug entries:\n%s", logs.String())
			}
		})
	}
	t.Run("a plugin's own default", func(t *testing.T) {
		var logs testutil.Buffer
		c := load(t, "svcplugin", host.WithLogger(hclog.New(&hclog.LoggerOptions{Name: "app", Level: hclog.Debug, Output: &logs})), host.WithCmd(func(cmd *exec.Cmd) {
			cmd.Env = append(cmd.Env, "REFPLUG_TEST_OWN_SLOG=1")
		}))
		if err := dispenseSvc(t, c).Logs("m"); err != nil {
			t.Fatal(err)
		}
		// Its own text handler's lines, which go-plugin logs as they are.
		testutil.Eventually(t, "the plugin's own handler's lines in the host's log", func() bool {
			return strings.Contains(logs.String(), "level=WARN msg=m")
		})
	})
}

// TestPluginOutputBeforeClose: what a plugin's method wrote to stdout and
// stderr has reached the host's writers, whole and with nothing added,
// when Close returns, however soon after the method Close comes: the
// plugin, told by the hang-up, waits until go-plugin has sent it on, and
// Close waits until the host has copied it. Before, the plugin exited
// after go-plugin's quit with its last line possibly still on its way
// (1–3 lives in 30 lost it). Each life also writes more than a pipe holds.
func TestPluginOutputBeforeClose(t *testing.T) {
	big := strings.Repeat("a long line of output, ", 10) + "\n"
	big = strings.Repeat(big, 100<<10/len(big))
	for _, tc := range []struct {
		name string
		opts []host.Option
	}{{"defaults", nil}, {"without TLS", []host.Option{host.WithAutoMTLS(false)}}} {
		t.Run(tc.name, func(t *testing.T) {
			for life := range 12 {
				var out, errOut testutil.Buffer
				c := load(t, "svcplugin", append([]host.Option{host.WithStdout(&out), host.WithStderr(&errOut)}, tc.opts...)...)
				svc := dispenseSvc(t, c)
				if life%4 == 0 {
					if err := svc.Print(big); err != nil {
						t.Fatal(err)
					}
				}
				last := fmt.Sprintf("the last line of life %d", life)
				if err := svc.Print(last); err != nil {
					t.Fatal(err)
				}
				if err := c.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				want := last + "\n"
				if life%4 == 0 {
					want = big + "\n" + want
				}
				if got := out.String(); got != want {
					t.Fatalf("life %d: when Close returned, the host had %d bytes of the plugin's stdout, ending %q; want %d, ending %q", life, len(got), tail(got), len(want), tail(want))
				}
				if got := errOut.String(); !strings.HasSuffix(got, "err: "+last+"\n") || strings.Contains(got, "\x00") {
					t.Fatalf("life %d: when Close returned, the plugin's stderr ended %q; want %q, and no fence", life, tail(got), "err: "+last+"\n")
				}
			}
		})
	}
}

// tail is the end of s, for messages.
func tail(s string) string { return s[max(0, len(s)-40):] }

// TestReattach: a host loads a plugin WithReattachable, hands its
// ReattachInfo on and exits without closing it; a later host reattaches,
// calls it, and its Close ends the plugin.
func TestReattach(t *testing.T) {
	info := reattachablePlugin(t)
	if !alive(info.Pid) {
		t.Fatalf("the plugin (pid %d) did not outlive the host that loaded it WithReattachable", info.Pid)
	}
	c, err := host.Reattach(info, host.WithLogger(testutil.Logger(t, "host")))
	if err != nil {
		t.Fatal(err)
	}
	svc := dispenseSvc(t, c)
	if pid, err := svc.Pid(); err != nil || pid != info.Pid {
		t.Errorf("Pid through the reattached client = %d, %v; want %d", pid, err, info.Pid)
	}
	if n, err := svc.Apply(func(x int) int { return x + 1 }, 41); err != nil || n != 42 {
		t.Errorf("a callback through the reattached client: %d, %v", n, err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	testutil.Eventually(t, "the reattached plugin to end at Close", func() bool { return !alive(info.Pid) })

	// A plugin loaded without WithReattachable says it cannot be.
	if _, err := load(t, "svcplugin").ReattachInfo(); err == nil || !strings.Contains(err.Error(), "WithReattachable") {
		t.Errorf("ReattachInfo of an ordinary plugin = %v", err)
	}
	if _, err := host.Load(filepath.Join(bin, "svcplugin"), host.WithReattachable()); err == nil || !strings.Contains(err.Error(), "WithAutoMTLS(false)") {
		t.Errorf("WithReattachable with AutoMTLS = %v; want it refused, naming WithAutoMTLS(false)", err)
	}
}

// reattachablePlugin has another host process (hostproc) load svcplugin
// WithReattachable and exit, and returns the plugin's ReattachInfo. The
// plugin is killed when the test ends, if it still runs.
func reattachablePlugin(t *testing.T) host.ReattachInfo {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "hostproc"), "-reattach", filepath.Join(bin, "svcplugin"))
	cmd.Stderr = testutil.Writer{T: t}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the first host: %v", err)
	}
	var info host.ReattachInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("the first host printed %q: %v", out, err)
	}
	t.Cleanup(func() {
		if p, err := os.FindProcess(info.Pid); err == nil && alive(info.Pid) {
			p.Kill()
		}
	})
	return info
}

// TestHTTPPluginProcess: a plugin process's http.Handler answers real HTTP
// clients behind this host's server.
func TestHTTPPluginProcess(t *testing.T) {
	c := load(t, "webplugin")
	h, err := host.Dispense[http.Handler](c, "web")
	if err != nil {
		t.Fatal(err)
	}
	scenario.HTTP(t, h)
}

// TestBuiltinRootsOfAPluginProcess: a plugin's root objects dispensed as
// built-in interfaces: an fs.FS behind this host's http.FileServerFS, an
// io.ReadSeeker read, sought and read again.
func TestBuiltinRootsOfAPluginProcess(t *testing.T) {
	c := load(t, "webplugin")
	const notice = "served by webplugin\n" // testdata/webplugin
	assets, err := host.Dispense[fs.FS](c, "assets")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServerFS(assets))
	defer srv.Close()
	for path, want := range map[string]string{"/notice.txt": notice, "/css/style.css": "body { margin: 0 }\n"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("GET %s: %s %q (%v); want 200 %q", path, resp.Status, body, err, want)
		}
	}
	r, err := host.Dispense[io.ReadSeeker](c, "notice")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := io.ReadAll(r); string(got) != notice || err != nil {
			t.Errorf("reading the notice: %q, %v", got, err)
		}
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := host.Dispense[io.Reader](c, "web"); err == nil || !strings.Contains(err.Error(), "does not implement io.Reader: missing method Read") {
		t.Errorf("Dispense[io.Reader] of an http.Handler: %v", err)
	}
}

// TestCopyBetweenHostObjects: a plugin io.Copying a reader of the host
// into a writer of the host (svcplugin's Copy) has the host make the copy:
// the data arrives whole, as does a reader's failure, and the host serves
// one call for it, not a Read and a Write a megabyte through the plugin.
func TestCopyBetweenHostObjects(t *testing.T) {
	c := load(t, "svcplugin")
	svc := dispenseSvc(t, c)
	data := contract.Pattern(5<<20 + 3)
	var out bytes.Buffer
	before := c.Stats().CallsServed
	n, err := svc.Copy(&out, bytes.NewReader(data))
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("Copy = %d, %v; equal = %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	if served := c.Stats().CallsServed - before; served != 1 {
		t.Errorf("the host served %d calls for the copy; want 1", served)
	}
	out.Reset()
	failing := io.MultiReader(bytes.NewReader(data[:1<<20]), iotest.ErrReader(fmt.Errorf("disk gone: %w", io.ErrUnexpectedEOF)))
	if n, err := svc.Copy(&out, failing); n != 1<<20 || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("Copy from a failing reader = %d, %v; want %d and its error", n, err, 1<<20)
	}
}

// TestYamuxLinesGoThroughTheLogger: the yamux session under go-plugin's
// connection to a plugin writes to the process's standard error when the
// plugin dies under it ("[ERR] yamux: Failed to write header: broken
// pipe"); those lines go through the host's logger instead. A host
// (testdata/hostproc) loads a plugin twenty times and has it exit as its
// first call, which without this left such lines on its stderr in about
// one life of five; and twenty times closes it at once after Load, while
// go-plugin's connection is still being made (its session logs before it
// can be given the logger), which left one in nearly every life before
// Close let that connection finish first. Its stderr holds only its
// logger's lines.
func TestYamuxLinesGoThroughTheLogger(t *testing.T) {
	for _, mode := range []string{"-crash", "-close"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(bin, "hostproc"), mode, "20", filepath.Join(bin, "svcplugin"))
			var stderr testutil.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("hostproc %s: %v\n%s", mode, err, stderr.String())
			}
			for _, line := range strings.Split(stderr.String(), "\n") {
				if strings.Contains(line, "[ERR] yamux") || strings.Contains(line, "[WARN] yamux") {
					t.Errorf("a yamux line bypassed the host's logger: %s", line)
				}
			}
		})
	}
}
