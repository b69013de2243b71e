package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// pluginDir copies the named test plugins into a directory of their own.
func pluginDir(t *testing.T, names ...string) string {
	dir := t.TempDir()
	for _, n := range names {
		copyFile(t, filepath.Join(bin, n), filepath.Join(dir, n))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil { // atomic: never run half-written
		t.Fatal(err)
	}
}

func TestManagerLoadsADirectory(t *testing.T) {
	dir := pluginDir(t, "svcplugin", "exits", "versioned")
	copyFile(t, filepath.Join(bin, "svcplugin"), filepath.Join(dir, "svcplugin2"))
	// More plugins than LoadDir starts at once, so that its limit is met.
	for i := range 20 {
		if err := os.Symlink(filepath.Join(dir, "svcplugin"), filepath.Join(dir, fmt.Sprintf("svc-copy-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	m := host.NewManager(host.LoadOptions(host.WithLogger(testutil.Logger(t, "host")), host.WithStartTimeout(5*time.Second)))
	defer m.Close()
	err := m.LoadDir(dir, "*")
	// exits is no plugin, and versioned has its own cookie: both are named.
	// Started in parallel, they are still reported in file name order.
	if err == nil || !strings.Contains(err.Error(), "exits") || !strings.Contains(err.Error(), "versioned") ||
		strings.Index(err.Error(), "exits") > strings.Index(err.Error(), "versioned") {
		t.Errorf("LoadDir = %v; want the two failures named, in file name order", err)
	}
	if got := m.Names(); len(got) != 22 || got[20] != "svcplugin" || got[21] != "svcplugin2" {
		t.Errorf("Names = %v; want the 20 copies, svcplugin and svcplugin2", got)
	}
	for _, p := range m.Names() {
		svc, err := host.DispenseFrom[contract.Service](m, p, "svc")
		if err != nil {
			t.Fatalf("DispenseFrom(%s): %v", p, err)
		}
		if _, err := svc.Pid(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	svcs := map[string]contract.Service{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []string{"svcplugin", "svcplugin2"} {
		svc, err := host.DispenseFromContext[contract.Service](ctx, m, p, "svc")
		if err != nil {
			t.Fatalf("DispenseFromContext(%s): %v", p, err)
		}
		svcs[p] = svc
	}
	ended, end := context.WithCancel(context.Background())
	end()
	if _, err := host.DispenseFromContext[contract.Service](ended, m, "svcplugin", "svc"); !errors.Is(err, context.Canceled) {
		t.Errorf("DispenseFromContext with an ended context = %v; want context.Canceled", err)
	}
	pid1, _ := svcs["svcplugin"].Pid()
	pid2, _ := svcs["svcplugin2"].Pid()
	if pid1 == 0 || pid1 == pid2 {
		t.Errorf("the two plugins run as pids %d and %d", pid1, pid2)
	}
	if _, err := host.DispenseFrom[contract.Service](m, "nope", "svc"); err == nil || !strings.Contains(err.Error(), "no plugin named nope") {
		t.Errorf("DispenseFrom(nope) = %v", err)
	}
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	t.Logf("closed two plugins in %v", time.Since(start))
	for p, svc := range svcs {
		if _, err := svc.Sum(1); !errors.Is(err, refbroker.ErrDisconnected) {
			t.Errorf("%s after Manager.Close: %v; want ErrDisconnected", p, err)
		}
	}
	if _, err := m.Client("svcplugin"); err == nil {
		t.Errorf("Client after Close succeeded")
	}
}

func TestManagerWithoutRestart(t *testing.T) {
	m := host.NewManager(host.LoadOptions(host.WithLogger(testutil.Logger(t, "host"))))
	defer m.Close()
	if err := m.Load(filepath.Join(bin, "svcplugin")); err != nil {
		t.Fatal(err)
	}
	svc, err := host.DispenseFrom[contract.Service](m, "svcplugin", "svc")
	if err != nil {
		t.Fatal(err)
	}
	svc.Exit(1)
	_, err = host.DispenseFrom[contract.Service](m, "svcplugin", "svc")
	if err == nil || !strings.Contains(err.Error(), "has exited") || !strings.Contains(err.Error(), "Restart") {
		t.Errorf("DispenseFrom a dead plugin = %v; want it to say so, with a hint", err)
	}
}

// TestManagerRestart: a plugin that died is started again by the next
// DispenseFrom, and the event is logged; a failing restart backs off.
func TestManagerRestart(t *testing.T) {
	dir := pluginDir(t, "svcplugin")
	var logs testutil.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs})
	m := host.NewManager(host.LoadOptions(host.WithLogger(logger), host.WithStartTimeout(5*time.Second)), host.Restart(2*time.Second, 4*time.Second))
	defer m.Close()
	if err := m.Load(filepath.Join(dir, "svcplugin")); err != nil {
		t.Fatal(err)
	}
	svc, _ := host.DispenseFrom[contract.Service](m, "svcplugin", "svc")
	pid, _ := svc.Pid()
	svc.Exit(1)
	old := svc
	svc, err := host.DispenseFrom[contract.Service](m, "svcplugin", "svc")
	if err != nil {
		t.Fatalf("DispenseFrom after the plugin died: %v", err)
	}
	// A proxy from before the restart stays with the dead process.
	if _, err := old.Sum(1); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("a proxy from before the restart: Sum = %v; want ErrDisconnected", err)
	}
	if npid, err := svc.Pid(); err != nil || npid == pid {
		t.Errorf("after a restart the plugin runs as pid %d (%v); it was %d", npid, err, pid)
	}
	if !strings.Contains(logs.String(), "plugin exited; restarting it") || !strings.Contains(logs.String(), "plugin restarted") {
		t.Errorf("the restart was not logged:\n%s", logs.String())
	}

	// Replace the binary with one that is not a plugin: the restart fails,
	// and the next attempt waits for the back-off.
	copyFile(t, filepath.Join(bin, "exits"), filepath.Join(dir, "svcplugin"))
	svc.Exit(1)
	if _, err := host.DispenseFrom[contract.Service](m, "svcplugin", "svc"); err == nil || !strings.Contains(err.Error(), "restarting plugin svcplugin") {
		t.Fatalf("a failing restart = %v", err)
	}
	if _, err := host.DispenseFrom[contract.Service](m, "svcplugin", "svc"); err == nil || !strings.Contains(err.Error(), "next try in") {
		t.Errorf("right after a failed restart = %v; want the back-off named", err)
	}
	copyFile(t, filepath.Join(bin, "svcplugin"), filepath.Join(dir, "svcplugin"))
	testutil.Eventually(t, "a restart after the back-off", func() bool {
		svc, err := host.DispenseFrom[contract.Service](m, "svcplugin", "svc")
		return err == nil && svc != nil
	})
}

// TestManagerClientContext: a restart is bounded by the caller's context
// (the plugin's new process is ended when it ends), a caller finding a
// restart in progress waits for it no longer than its own context, and a
// restart its caller gave up on costs the next caller no back-off.
func TestManagerClientContext(t *testing.T) {
	dir := pluginDir(t, "svcplugin")
	var logs testutil.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs})
	m := host.NewManager(host.LoadOptions(host.WithLogger(logger), host.WithStartTimeout(time.Minute)), host.Restart(time.Minute, time.Hour))
	defer m.Close()
	if err := m.Load(filepath.Join(dir, "svcplugin")); err != nil {
		t.Fatal(err)
	}
	svc, err := host.DispenseFrom[contract.Service](m, "svcplugin", "svc")
	if err != nil {
		t.Fatal(err)
	}
	// The plugin dies, and its binary is now one that never starts.
	c, err := m.Client("svcplugin")
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(bin, "hangs"), filepath.Join(dir, "svcplugin"))
	svc.Exit(1)
	testutil.Eventually(t, "the plugin's exit to be seen", c.Exited)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := host.DispenseFromContext[contract.Service](ctx, m, "svcplugin", "svc")
		first <- err
	}()
	testutil.Eventually(t, "the restart to begin", func() bool { return strings.Contains(logs.String(), "restarting it") })
	wctx, wcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer wcancel()
	if _, err := m.ClientContext(wctx, "svcplugin"); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "being restarted") {
		t.Errorf("ClientContext during another caller's restart = %v; want its deadline, naming the restart", err)
	}
	cancel()
	err = testutil.Receive(t, first, 10*time.Second, "a restart still runs 10 s after its caller's context was cancelled")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "restarting plugin svcplugin") {
		t.Errorf("DispenseFromContext whose restart was cancelled = %v; want context.Canceled, naming the restart", err)
	}

	// No back-off (a minute here) for a restart the caller gave up on.
	copyFile(t, filepath.Join(bin, "svcplugin"), filepath.Join(dir, "svcplugin"))
	svc, err = host.DispenseFrom[contract.Service](m, "svcplugin", "svc")
	if err != nil {
		t.Fatalf("DispenseFrom after a cancelled restart = %v; want the plugin restarted at once", err)
	}
	if _, err := svc.Sum(1); err != nil {
		t.Errorf("Sum through the restarted plugin = %v", err)
	}
}

// TestManagerNamesAndUnload: LoadAs names plugins (two from one binary),
// Unload ends one and frees its name, and Close ends a plugin still
// starting at once.
func TestManagerNamesAndUnload(t *testing.T) {
	m := host.NewManager(host.LoadOptions(host.WithLogger(testutil.Logger(t, "host"))))
	defer m.Close()
	svc := filepath.Join(bin, "svcplugin")
	for _, name := range []string{"a", "b"} {
		if err := m.LoadAs(name, svc); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Names = %v", got)
	}
	a, err := host.DispenseFrom[contract.Service](m, "a", "svc")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Unload("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sum(1); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("Sum through an unloaded plugin = %v; want ErrDisconnected", err)
	}
	if got := m.Names(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Names after Unload = %v", got)
	}
	if err := m.Unload("nope"); err == nil || !strings.Contains(err.Error(), "no plugin named nope") {
		t.Errorf("Unload(nope) = %v", err)
	}
	if err := m.LoadAs("a", svc); err != nil {
		t.Errorf("LoadAs under a freed name: %v", err)
	}

	// Close ends a plugin still starting (one that never completes the
	// handshake) at once: its Load fails.
	pidFile := filepath.Join(t.TempDir(), "hangs.pid")
	t.Setenv("REFPLUG_TEST_PIDFILE", pidFile)
	m2 := host.NewManager(host.LoadOptions(host.WithLogger(testutil.Logger(t, "host")), host.WithStartTimeout(time.Minute)))
	started := make(chan error, 1)
	go func() { started <- m2.LoadAs("slow", filepath.Join(bin, "hangs")) }()
	pid := readPid(t, pidFile) // the process runs: the start is under way
	m2.Close()
	err = testutil.Receive(t, started, 15*time.Second, "Close did not end a plugin still starting")
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("LoadAs while the manager closed = %v; want it to say so", err)
	}
	testutil.Eventually(t, "the starting plugin's process to be gone", func() bool { return !alive(pid) })
}
