//go:build unix

package host_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/scenario"
	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// A plugin that stops reading (here: stopped with SIGSTOP) costs the host
// bounded memory, and a caller whose context ends returns then, even
// while its message is being written.
func TestStoppedPluginBoundsTheHost(t *testing.T) {
	c := load(t, "svcplugin", host.WithMaxQueuedBytes(8<<20))
	svc := dispenseSvc(t, c)
	resume := stopPlugin(t, svc)

	before := testutil.HeapAfterGC()
	const callers, size = 50, 4 << 20
	errs := make(chan error, callers)
	for range callers {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := svc.Upload(ctx, make([]byte, size))
			errs <- err
		}()
	}
	for i := range callers {
		err := testutil.Receive(t, errs, 10*time.Second, fmt.Sprintf("%d of %d callers still blocked 10s after their 300ms deadline", callers-i, callers))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Upload to a stopped plugin = %v; want DeadlineExceeded", err)
		}
	}
	// What waits to be written is bounded (8 MiB queued, plus the frame
	// being written), not 50 × 4 MiB.
	if grew := int64(testutil.HeapAfterGC()) - int64(before); grew > 32<<20 {
		t.Errorf("the host's heap grew by %d MiB while the plugin was stopped; want it bounded by the write queue", grew>>20)
	}
	resume()
	if n, err := svc.Sum(2, 3); err != nil || n != 5 {
		t.Errorf("Sum after the plugin resumed = %d, %v", n, err)
	}
}

// stopPlugin stops svc's plugin process (SIGSTOP) and returns what lets it
// run again; it runs again when the test ends in any case.
func stopPlugin(t *testing.T, svc contract.Service) (resume func()) {
	t.Helper()
	pid, err := svc.Pid()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resume = func() { syscall.Kill(pid, syscall.SIGCONT) }
	t.Cleanup(resume)
	// kill returns before the process has stopped, and until then it
	// still answers.
	testutil.Eventually(t, "the plugin to stop", func() bool { return procState(pid) == 'T' })
	return resume
}

// TestPing: Ping answers while the plugin serves; a stopped plugin holds
// PingContext no longer than its context, and answers again once it runs;
// a plugin that has died gives ErrDisconnected.
func TestPing(t *testing.T) {
	c := load(t, "svcplugin")
	if err := c.Ping(); err != nil {
		t.Fatalf("Ping of a running plugin: %v", err)
	}
	svc := dispenseSvc(t, c)
	resume := stopPlugin(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := c.PingContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("PingContext of a stopped plugin = %v; want its deadline", err)
	}
	resume()
	if err := c.Ping(); err != nil {
		t.Errorf("Ping once the plugin runs again: %v", err)
	}
	if err := svc.Exit(0); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Fatalf("Exit = %v", err)
	}
	if err := c.Ping(); !errors.Is(err, refbroker.ErrDisconnected) || !strings.Contains(err.Error(), "Ping") {
		t.Errorf("Ping of a plugin that exited = %v; want ErrDisconnected naming Ping", err)
	}
}

// TestDispenseContextStoppedPlugin: a Dispense from a stopped plugin
// returns at its context's deadline; once the plugin runs again, the late
// answer is released (the host holds no proxy for it) and Dispense works.
func TestDispenseContextStoppedPlugin(t *testing.T) {
	c := load(t, "svcplugin")
	first := dispenseSvc(t, c)
	resume := stopPlugin(t, first)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := host.DispenseContext[contract.Service](ctx, c, "svc")
		errc <- err
	}()
	err := testutil.Receive(t, errc, 10*time.Second, "DispenseContext from a stopped plugin still waits 10 s after its 200 ms deadline")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "svcplugin") {
		t.Errorf("DispenseContext from a stopped plugin = %v; want DeadlineExceeded, naming the plugin", err)
	}
	resume()
	testutil.Eventually(t, "the late answer to arrive and be released", func() bool {
		runtime.GC()
		s := c.Stats()
		return s.ImportsCreated == 2 && s.Imports == 1 // the first Dispense's proxy is held
	})
	if n, err := dispenseSvc(t, c).Sum(2, 3); err != nil || n != 5 {
		t.Errorf("Sum after the plugin resumed = %d, %v", n, err)
	}
	if n, err := first.Sum(1, 1); err != nil || n != 2 {
		t.Errorf("Sum through the first proxy = %d, %v", n, err)
	}
}

// TestRequestsWithoutAContextEndAtTheStartTimeout: Dispense, Describe and
// Ping, which the plugin's refplug answers itself, given no context and no
// WithCallTimeout, return at the start timeout from a plugin that does not
// answer (stopped), with an error that wraps DeadlineExceeded and names
// the plugin and the bound; once it runs again they work.
func TestRequestsWithoutAContextEndAtTheStartTimeout(t *testing.T) {
	const bound = 3 * time.Second
	c := load(t, "svcplugin", host.WithStartTimeout(bound))
	svc := dispenseSvc(t, c)
	if n, err := svc.Sum(1, 2); err != nil || n != 3 { // go-plugin's connection is made
		t.Fatalf("Sum = %d, %v", n, err)
	}
	resume := stopPlugin(t, svc)
	requests := map[string]func() error{
		"Dispense": func() error { _, err := host.Dispense[contract.Service](c, "svc"); return err },
		"Describe": func() error { _, err := c.Describe(); return err },
		"Ping":     c.Ping,
	}
	errs := make(chan error, len(requests))
	for _, req := range requests {
		go func() { errs <- req() }()
	}
	for range requests {
		err := testutil.Receive(t, errs, bound+10*time.Second, "a request to a stopped plugin still waits 10 s after the start timeout")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "svcplugin") || !strings.Contains(err.Error(), "not answered within 3s (the start timeout") {
			t.Errorf("request to a stopped plugin = %v; want DeadlineExceeded, naming the plugin and the start timeout", err)
		}
	}
	resume()
	for name, req := range requests {
		if err := req(); err != nil {
			t.Errorf("%s after the plugin resumed: %v", name, err)
		}
	}
	if n, err := svc.Sum(2, 2); err != nil || n != 4 {
		t.Errorf("Sum after the plugin resumed = %d, %v", n, err)
	}
}

// TestCloseEndsThePluginsDescendants: a plugin whose helper process holds
// its stdout and stderr (go-plugin waits for those to close) is closed
// within Close's bound, and the helper is ended with it.
func TestCloseEndsThePluginsDescendants(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "helper.pid")
	t.Setenv("REFPLUG_TEST_PIDFILE", pidFile)
	c := load(t, "spawner")
	if n, err := dispenseSvc(t, c).Sum(1, 2); err != nil || n != 3 {
		t.Fatalf("Sum = %d, %v", n, err)
	}
	helper := readPid(t, pidFile)
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	testutil.Receive(t, closed, 15*time.Second, "Close is still waiting for the plugin's helper") // the helper lives 120 s; the bound is 5 s
	testutil.Eventually(t, "the plugin's helper to be ended", func() bool { return !alive(helper) })
	if !c.Exited() {
		t.Error("Exited() = false after Close returned")
	}
}

// TestHostKilledEndsThePluginsDescendants: when the host dies by SIGKILL,
// the plugin exits and ends the processes it started.
func TestHostKilledEndsThePluginsDescendants(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "helper.pid")
	t.Setenv("REFPLUG_TEST_PIDFILE", pidFile)
	cmd, pid := startHostProc(t, "spawner")
	helper := readPid(t, pidFile)
	cmd.Process.Kill()
	cmd.Wait()
	testutil.Eventually(t, "the orphaned plugin to exit", func() bool { return !alive(pid) })
	testutil.Eventually(t, "the plugin's helper to be ended", func() bool { return !alive(helper) })
}

// TestStartTimeoutCoversTheConnection: a program that completes
// go-plugin's handshake and then never answers fails Load within the start
// timeout, and is killed.
func TestStartTimeoutCoversTheConnection(t *testing.T) {
	path := filepath.Join(bin, "silent")
	done := make(chan error, 1)
	go func() {
		c, err := host.Load(path, host.WithLogger(testutil.Logger(t, "host")), host.WithAutoMTLS(false), host.WithStartTimeout(time.Second))
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	err := testutil.Receive(t, done, 15*time.Second, "Load is still waiting, well past its 1s start timeout")
	if err == nil || !strings.Contains(err.Error(), "start timeout (1s") {
		t.Errorf("Load of a plugin that never answers = %v; want the start timeout named", err)
	}
}

// TestLoadContextCancel: cancelling LoadContext's context ends the start
// at once, with the context's error, and kills the process.
func TestLoadContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		c, err := host.LoadContext(ctx, filepath.Join(bin, "silent"), host.WithLogger(testutil.Logger(t, "host")), host.WithAutoMTLS(false))
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	cancel() // at whatever point of the start LoadContext has reached
	err := testutil.Receive(t, done, 15*time.Second, "LoadContext did not return after its context was cancelled")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("LoadContext after cancel = %v; want context.Canceled", err)
	}
	if _, err := host.LoadContext(ctx, filepath.Join(bin, "svcplugin")); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadContext with a cancelled context = %v", err)
	}
}

// A plugin that serves on its socket pair but never answers go-plugin's
// connection (the handshake the host makes in the background stalls):
// Load and Dispense work; Exited and ExitStatus answer at once; Close
// ends it within Close's bound. The host holds its calls until go-plugin's
// connection is made (with TLS or without), so a call waits, and fails
// once the start timeout has ended the plugin (it neither hangs nor runs),
// and the host's log says why.
func TestPluginWithMuteGoPluginSide(t *testing.T) {
	mute := func(t *testing.T, opts ...host.Option) (*host.Client, *testutil.Buffer) {
		dir := t.TempDir()
		var logs testutil.Buffer
		c, err := host.Load(filepath.Join(bin, "mutegp"), append([]host.Option{host.WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logs})),
			host.WithCmd(func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, "MUTEGP_DIR="+dir) })}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, &logs
	}
	t.Run("Close", func(t *testing.T) {
		c, _ := mute(t)
		dispenseSvc(t, c)
		// go-plugin holds its client's lock while its connection is being
		// made, here until it gives up: Exited and ExitStatus must not wait
		// for it.
		status := make(chan bool, 1)
		go func() {
			_, exited := c.ExitStatus()
			status <- c.Exited() || exited
		}()
		exited := testutil.Receive(t, status, 5*time.Second, "Exited and ExitStatus did not return within 5 s while go-plugin's connection was being made")
		if exited {
			t.Error("Exited or ExitStatus reports a running plugin as exited")
		}
		closed := make(chan error, 1)
		go func() { closed <- c.Close() }()
		testutil.Receive(t, closed, 10*time.Second, "Close did not return within 10 s (its bound is 5 s)")
		if st, exited := c.ExitStatus(); !exited {
			t.Errorf("the plugin is still running after Close (%v)", st)
		}
	})
	for name, tls := range map[string]bool{"start timeout": true, "start timeout without TLS": false} {
		t.Run(name, func(t *testing.T) {
			c, logs := mute(t, host.WithStartTimeout(time.Second), host.WithAutoMTLS(tls))
			svc := dispenseSvc(t, c)
			done := make(chan error, 1)
			go func() {
				_, err := svc.Sum(2, 3)
				done <- err
			}()
			err := testutil.Receive(t, done, 15*time.Second, "a call held for go-plugin's connection did not return after the start timeout")
			if !errors.Is(err, refbroker.ErrDisconnected) {
				t.Errorf("a call held for go-plugin's connection = %v; want ErrDisconnected once the plugin is ended", err)
			}
			testutil.Eventually(t, "the plugin to be ended at the start timeout", c.Exited)
			if !strings.Contains(logs.String(), "not made within the start timeout") {
				t.Errorf("the host's log does not say why the plugin was ended:\n%s", logs.String())
			}
		})
	}
}

// A plugin that announces a frame of almost 64 MiB (within the message
// limit) and sends one MiB of it costs the host what arrived, not what was
// announced: the frame's buffer grows with its bytes.
func TestHugeFramePrefixBoundsTheHost(t *testing.T) {
	done := filepath.Join(t.TempDir(), "announced")
	c := load(t, "svcplugin", host.WithCmd(func(cmd *exec.Cmd) {
		cmd.Env = append(cmd.Env, "REFPLUG_TEST_HUGE_FRAME="+done)
	}))
	dispenseSvc(t, c) // started and serving
	before := testutil.HeapAfterGC()
	returned := make(chan error, 1)
	go func() {
		_, err := c.CallJSON("hostile", "Announce")
		returned <- err
	}()
	testutil.Eventually(t, "the plugin has written the start of its frame", func() bool {
		_, err := os.Stat(done)
		return err == nil
	})
	if grew := int64(testutil.HeapAfterGC()) - int64(before); grew > 16<<20 {
		t.Errorf("the host's heap grew by %d MiB for a frame announced at 64 MiB of which 1 MiB came; want it bounded by what arrived", grew>>20)
	}
	c.Close()
	err := testutil.Receive(t, returned, 10*time.Second, "the call was still waiting 10s after Close")
	if !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("the call whose return never came = %v after Close; want ErrDisconnected", err)
	}
}

// A plugin built from a contract whose Wide has none of this side's fields
// sends a million of them in a megabyte, which would decode here into a
// gigabyte (the fields only this side has keep their zero values). The
// call fails, naming the message's memory budget, without the host
// allocating more than about that budget (64 bytes a byte, and 128 apart
// for such fields), and the plugin serves on.
func TestReceiverOnlyFieldsBoundTheHost(t *testing.T) {
	c := load(t, "skewplugin")
	w, err := host.Dispense[contract.Wides](c, "widener")
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	if got, err := w.Wides(10); err != nil || len(got) != 10 {
		t.Fatalf("Wides(10) = %d, %v", len(got), err)
	}
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(allocs)
	before := allocs[0].Value.Uint64()
	_, err = w.Wides(1 << 20)
	metrics.Read(allocs)
	if err == nil || !strings.Contains(err.Error(), "more memory than its budget") {
		t.Fatalf("Wides(1<<20) = %v; want the message's memory budget named", err)
	}
	if grew := allocs[0].Value.Uint64() - before; grew > 3*192<<20 {
		t.Errorf("the host allocated %d MiB for a 1 MiB message; want it bounded by the budget (about 192 MiB)", grew>>20)
	}
	if got, err := w.Wides(10); err != nil || len(got) != 10 {
		t.Errorf("Wides(10) after the refused message = %d, %v", len(got), err)
	}
}

// WithMaxImports bounds how many of the plugin's objects the host holds
// proxies for: the call whose result would pass it fails, naming the
// limit, and the plugin serves on.
// TestMaxExportsBoundsTheHost: a plugin that asks the host for objects
// and releases none (svcplugin's Hoard) holds at most WithMaxExports of
// them; its calls past the limit fail, naming it, and the host goes on.
func TestMaxExportsBoundsTheHost(t *testing.T) {
	c := load(t, "svcplugin", host.WithMaxExports(10))
	svc := dispenseSvc(t, c)
	got, first, err := svc.Hoard(contract.NewService(nil), 50) // the factory is the first of the ten
	if err != nil {
		t.Fatal(err)
	}
	if got != 9 || !strings.Contains(first, "already holds 10 of this side's objects, the limit (Options.MaxExports)") {
		t.Errorf("Hoard(50) with the limit at 10 got %d counters, first failure %q; want 9 and the limit named", got, first)
	}
	if n := c.Stats().Exports; n != 10 {
		t.Errorf("the host exports %d objects; want the limit, 10", n)
	}
	if n, err := svc.Sum(2, 3); err != nil || n != 5 {
		t.Errorf("Sum after the refused calls = %d, %v", n, err)
	}
}

func TestMaxImportsBoundsTheHost(t *testing.T) {
	c := load(t, "svcplugin", host.WithMaxImports(5))
	svc := dispenseSvc(t, c) // the first of the five
	var held []contract.Counter
	for i := range 4 {
		ctr, err := svc.NewCounter(fmt.Sprint("c", i))
		if err != nil {
			t.Fatalf("NewCounter %d: %v", i, err)
		}
		held = append(held, ctr)
	}
	if _, err := svc.NewCounter("one too many"); err == nil || !strings.Contains(err.Error(), "already holds 5 of the other side's objects") {
		t.Errorf("NewCounter past the limit = %v; want the limit named", err)
	}
	if n, err := svc.Sum(2, 3); err != nil || n != 5 {
		t.Errorf("Sum after the refused result = %d, %v", n, err)
	}
	runtime.KeepAlive(held)
}

// TestCallTimeoutBoundsAHungPlugin: with WithCallTimeout, a plugin that
// hangs in a method without a context, or stops altogether, costs the
// host's caller the timeout, not its goroutine for the plugin's life; the
// error says which method and which bound; methods with a context keep
// theirs (the plugin sees no deadline the caller did not set); and the
// plugin is usable again once it answers.
func TestCallTimeoutBoundsAHungPlugin(t *testing.T) {
	c := load(t, "svcplugin", host.WithCallTimeout(300*time.Millisecond))
	svc := dispenseSvc(t, c)

	errc := make(chan error, 1)
	go func() { errc <- svc.Block("stuck") }()
	err := testutil.Receive(t, errc, 10*time.Second, "a call into a hung method still waits 10 s after its 300 ms call timeout")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Service.Block") || !strings.Contains(err.Error(), "call timeout of 300ms") {
		t.Errorf("Block past the call timeout = %v; want context.DeadlineExceeded, naming the method and the timeout", err)
	}
	if blocked, err := svc.Blocked("stuck"); err != nil || !blocked {
		t.Errorf("Blocked = %v, %v; want the plugin still in Block, and answering", blocked, err)
	}
	if _, ok, err := svc.Deadline(context.Background()); err != nil || ok {
		t.Errorf("Deadline(a context without one) = %v, %v; want none: the call timeout is the host's, not the plugin's deadline", ok, err)
	}
	if err := svc.Open("stuck"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "Block's late return to be taken in", func() bool { return c.Stats().Pending == 0 })

	// A stopped plugin: each call returns at the timeout; then it runs on.
	resume := stopPlugin(t, svc)
	go func() { _, err := svc.Sum(1, 2); errc <- err }()
	err = testutil.Receive(t, errc, 10*time.Second, "a call into a stopped plugin still waits 10 s after its 300 ms call timeout")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sum into a stopped plugin = %v; want context.DeadlineExceeded", err)
	}
	// Dispense and Describe, which take no context, are bounded too.
	go func() { _, err := host.Dispense[contract.Service](c, "svc"); errc <- err }()
	err = testutil.Receive(t, errc, 10*time.Second, "a Dispense from a stopped plugin still waits 10 s after its 300 ms call timeout")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `Dispense("svc")`) || !strings.Contains(err.Error(), "call timeout") {
		t.Errorf("Dispense from a stopped plugin = %v; want context.DeadlineExceeded, naming the Dispense and the call timeout", err)
	}
	go func() { _, err := c.Describe(); errc <- err }()
	err = testutil.Receive(t, errc, 10*time.Second, "a Describe of a stopped plugin still waits 10 s after its 300 ms call timeout")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Describe of a stopped plugin = %v; want context.DeadlineExceeded", err)
	}
	resume()
	if n, err := svc.Sum(1, 2); err != nil || n != 3 {
		t.Errorf("Sum once the plugin runs again = %d, %v; want 3", n, err)
	}
}

// stuckHost is a host object whose Ping waits until release is closed.
type stuckHost struct{ release chan struct{} }

func (h stuckHost) Ping(int) (int, error) { <-h.release; return 0, nil }

// TestPluginCallTimeout: plugin.WithCallTimeout bounds the plugin's calls
// into the host the same way: a host callback that hangs costs the plugin
// the timeout, and the error the plugin returns says so, down to the host.
func TestPluginCallTimeout(t *testing.T) {
	c := load(t, "svcplugin", host.WithCmd(func(cmd *exec.Cmd) {
		cmd.Env = append(cmd.Env, "REFPLUG_TEST_CALL_TIMEOUT=300ms")
	}))
	svc := dispenseSvc(t, c)
	h := stuckHost{release: make(chan struct{})}
	defer close(h.release)
	errc := make(chan error, 1)
	go func() { _, err := svc.Bounce(h, 1); errc <- err }()
	err := testutil.Receive(t, errc, 10*time.Second, "the plugin's call into a hung host object still waits 10 s after its 300 ms call timeout")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Host.Ping") || !strings.Contains(err.Error(), "call timeout of 300ms") {
		t.Errorf("Bounce into a hung host = %v; want the plugin's context.DeadlineExceeded, naming Host.Ping and the timeout", err)
	}
}

// TestStreamsUnderASmallMessageLimit: a host or a plugin that lowers its
// message size limit (hardening: 100 KiB here, against 1 MiB a round trip)
// still streams through the built-in reader, writer, read-writer and io/fs
// proxies, both ways, and serves HTTP: reads move what both sides' limits
// allow, and writes the peer refuses as too large go again smaller. Each
// failed before, at its first read or write of a megabyte, naming the
// limit. (Values of the contract's own beyond the limit, a megabyte result
// or a read-shaped method's megabyte buffer, are refused as before:
// TestLoadErrors, internal_test.go.)
func TestStreamsUnderASmallMessageLimit(t *testing.T) {
	const limit = 100 << 10
	for _, side := range []string{"host", "plugin", "both"} {
		t.Run(side, func(t *testing.T) {
			var opts []host.Option
			if side != "plugin" {
				opts = append(opts, host.WithMaxMessageSize(limit))
			}
			if side != "host" {
				opts = append(opts, host.WithCmd(func(cmd *exec.Cmd) {
					cmd.Env = append(cmd.Env, fmt.Sprintf("REFPLUG_TEST_MAX_MESSAGE=%d", limit))
				}))
			}
			svc := dispenseSvc(t, load(t, "svcplugin", opts...))
			for name, run := range map[string]func(*testing.T, contract.Service){
				"Streams": scenario.Streams, "Duplex": scenario.Duplex, "FileSystems": scenario.FileSystems,
			} {
				t.Run(name, func(t *testing.T) { run(t, svc) })
			}
		})
	}
	t.Run("HTTP", func(t *testing.T) {
		h, err := host.Dispense[http.Handler](load(t, "webplugin", host.WithMaxMessageSize(limit)), "web")
		if err != nil {
			t.Fatal(err)
		}
		scenario.HTTP(t, h)
	})
}

// gateWriter's Write waits until open is closed, counting the writes in
// progress and the most at once.
type gateWriter struct {
	open          chan struct{}
	mu            sync.Mutex
	now, most, ok int
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.now++
	w.most = max(w.most, w.now)
	w.mu.Unlock()
	<-w.open
	w.mu.Lock()
	w.now--
	w.ok++
	w.mu.Unlock()
	return len(p), nil
}

func (w *gateWriter) counts() (now, most, ok int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now, w.most, w.ok
}

// TestMaxServedBytesBoundsTheHost: a plugin writing 32 MiB-sized buffers
// at once to a host io.Writer that is slow (here: blocked) gets no more
// than WithMaxServedBytes of them held in the host; the rest fail at once
// with an error naming the limit, and every write either ran or failed.
func TestMaxServedBytesBoundsTheHost(t *testing.T) {
	c := load(t, "svcplugin", host.WithMaxServedBytes(4<<20))
	svc := dispenseSvc(t, c)
	w := &gateWriter{open: make(chan struct{})}
	type result struct {
		failed int
		first  string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		failed, first, err := svc.Pour(w, 32, 1<<20)
		done <- result{failed, first, err}
	}()
	testutil.Eventually(t, "every write to be taken up or refused", func() bool {
		st := c.Stats()
		return st.CallsServed+st.CallsRefused == 32
	})
	if refused := c.Stats().CallsRefused; refused < 28 {
		t.Errorf("%d of 32 writes of 1 MiB at once were refused; want at least 28 (the limit is 4 MiB)", refused)
	}
	close(w.open)
	r := testutil.Receive(t, done, 10*time.Second, "Pour did not return once the writer was open")
	_, most, ok := w.counts()
	if r.err != nil || r.failed+ok != 32 || !strings.Contains(r.first, "MaxServedBytes") {
		t.Errorf("Pour = %d failed (%q), %v; %d writes ran; want 32 in all, the failures naming MaxServedBytes", r.failed, r.first, r.err, ok)
	}
	if most > 4 {
		t.Errorf("%d writes of 1 MiB were held in the host at once; the limit is 4 MiB", most)
	}
}

// TestCloseOfAHungRemotePlugin: Close of a client attached to a remote
// plugin that has hung (stopped with SIGSTOP) returns once go-plugin's
// quit has gone unanswered for its wait, saying so, disconnected; the
// plugin, when it runs again, serves the next host.
func TestCloseOfAHungRemotePlugin(t *testing.T) {
	defer host.SetQuitWait(300 * time.Millisecond)()
	addr, clientTLS, _, pid := startRemote(t)
	c, err := host.Attach(addr, host.WithTLS(clientTLS), host.WithLogger(testutil.Logger(t, "host")))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := host.Dispense[contract.Service](c, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := svc.Sum(2, 3); err != nil || n != 5 {
		t.Fatalf("Sum = %d, %v", n, err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resume := func() { syscall.Kill(pid, syscall.SIGCONT) }
	t.Cleanup(resume)
	testutil.Eventually(t, "the remote plugin to stop", func() bool { return procState(pid) == 'T' })
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	err = testutil.Receive(t, done, 10*time.Second, "Close of a hung remote plugin still waits, well past its 300 ms")
	if err == nil || !strings.Contains(err.Error(), "did not answer go-plugin's quit within 300ms") {
		t.Errorf("Close of a hung remote plugin = %v; want the unanswered quit named", err)
	}
	if !c.Exited() {
		t.Error("Exited() = false after Close returned")
	}
	if _, err := svc.Sum(1); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("Sum after Close = %v; want ErrDisconnected", err)
	}
	resume()
	c2, err := host.Attach(addr, host.WithTLS(clientTLS), host.WithLogger(testutil.Logger(t, "host")))
	if err != nil {
		t.Fatalf("Attach once the plugin runs again: %v", err)
	}
	defer c2.Close()
	svc2, err := host.Dispense[contract.Service](c2, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := svc2.Sum(4, 5); err != nil || n != 9 {
		t.Errorf("Sum through the next host = %d, %v", n, err)
	}
}

// TestCloseOfAHungReattachedPlugin: Close of a reattached plugin that has
// hung (stopped with SIGSTOP) ends it all the same, within Close's bound:
// it is not in this host's process group, so only go-plugin's Kill can
// end it, which waits for its unanswered quit until the session under it
// is closed.
func TestCloseOfAHungReattachedPlugin(t *testing.T) {
	info := reattachablePlugin(t)
	c, err := host.Reattach(info, host.WithLogger(testutil.Logger(t, "host")))
	if err != nil {
		t.Fatal(err)
	}
	svc := dispenseSvc(t, c)
	stopPlugin(t, svc)
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	testutil.Receive(t, done, 10*time.Second, "Close of a hung reattached plugin still waits, past Close's 5 s bound")
	testutil.Eventually(t, "the hung reattached plugin to be killed at Close", func() bool { return !alive(info.Pid) })
}

// TestPluginStderrCannotHarmTheHost: what a broken or hostile plugin
// writes to its stderr reaches the host's log as go-plugin would log it
// (hclog entries at their level with their fields, "[WARN]" lines as
// warnings, a panic's lines as errors, the rest at debug level), but an
// entry whose message, level or timestamp is not a string no longer
// panics the host (go-plugin's parser did, in a goroutine of its own),
// and control and bidirectional formatting characters in messages and
// field names reach the log as Go escapes: no terminal escapes, no line
// forged to look like the host's, none that reads reordered.
func TestPluginStderrCannotHarmTheHost(t *testing.T) {
	lines := []string{
		`{"@message":1,"@level":"info"}`,
		`{"@level":7}`,
		`{"@message":"stamped","@level":"warn","@timestamp":3}`,
		`{"@message":"esc\u001b[2J\n2026-01-01T00:00:00.000Z [ERROR] forged","@level":"warn","k\u001b[31m":"v","b":1,"a":"two"}`,
		"\x1b]0;title\x07 a raw line \xff",
		"reads \u202eesrever ni\u202c",
		"[WARN] a warning",
		"panic: oh",
		"goroutine 1 [running]:",
	}
	var logs testutil.Buffer
	c, err := host.Load(filepath.Join(bin, "svcplugin"),
		host.WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})),
		host.WithCmd(func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, "REFPLUG_TEST_STDERR="+strings.Join(lines, "\n")+"\n") }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	svc := dispenseSvc(t, c)
	if err := svc.Print("\x1b[2Jfrom a method\n2026-01-01T00:00:00.000Z [ERROR] forged too"); err != nil {
		t.Fatalf("Print: %v", err)
	}
	testutil.Eventually(t, "the plugin's stderr lines in the host's log", func() bool {
		out := logs.String()
		// Print writes to stdout and stderr: two pipes, read apart.
		return strings.Contains(out, "goroutine 1 [running]:") && strings.Count(out, "forged too") == 2
	})
	out := logs.String()
	if strings.ContainsAny(out, "\x1b\x07\u202e") || !utf8.ValidString(out) {
		t.Errorf("the host's log holds control characters or broken UTF-8 the plugin wrote:\n%q", out)
	}
	for _, want := range []string{
		"[INFO]  svcplugin: 1\n",
		`[DEBUG] svcplugin: {"@level":7}` + "\n",
		`[DEBUG] svcplugin: {"@message":"stamped","@level":"warn","@timestamp":3}` + "\n",
		`[WARN]  svcplugin: esc\x1b[2J\x0a2026-01-01T00:00:00.000Z [ERROR] forged: k\x1b[31m=v b=1 a=two` + "\n",
		`[DEBUG] svcplugin: \x1b]0;title\x07 a raw line \xff` + "\n",
		`[DEBUG] svcplugin: reads \u202eesrever ni\u202c` + "\n",
		"[WARN]  svcplugin: [WARN] a warning\n",
		"[ERROR] svcplugin: panic: oh\n",
		"[ERROR] svcplugin: goroutine 1 [running]:\n",
		`svcplugin: err: \x1b[2Jfrom a method: stream=stderr` + "\n",
		`svcplugin: \x1b[2Jfrom a method: stream=stdout` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the host's log lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "2026-01-01") {
			t.Errorf("the plugin forged a line of the host's log: %q", line)
		}
	}
}
