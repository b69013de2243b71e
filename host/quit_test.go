package host_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/testutil"
)

// TestCloseEndsPluginInOrder: however host and plugin connected — the
// plugin serving on its socket at once (with refplug's mutual TLS, the
// default, or without TLS), or a plugin of a refplug that waits for
// go-plugin's Dispense although the host offered the early start, or one
// that starts early but does not take the host's offer to end it by
// hanging up — calls work, Close ends the plugin the orderly way (by
// hanging up where the plugin took the offer, or with go-plugin's quit
// answered; the plugin's code after Serve run and its last log line
// forwarded before Close returns, exit status 0), and nothing is logged
// above Info on the way.
func TestCloseEndsPluginInOrder(t *testing.T) {
	oldStart := host.WithCmd(func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, "REFPLUG_TEST_OLD_START=1") })
	goPluginQuit := host.WithCmd(func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, "REFPLUG_TEST_QUIT_BY_GOPLUGIN=1") })
	const hangUp, goPlugin = "ending the plugin: hanging up", "ending the plugin: go-plugin's quit"
	for _, c := range []struct {
		name string
		opts []host.Option
		way  string // how Close ends an early start (the host's debug log)
	}{
		{"defaults", nil, hangUp},
		{"without TLS", []host.Option{host.WithAutoMTLS(false)}, hangUp},
		{"plugin of an older refplug", []host.Option{oldStart}, ""},
		{"plugin of an older refplug, without TLS", []host.Option{oldStart, host.WithAutoMTLS(false)}, ""},
		{"plugin ended through go-plugin's quit", []host.Option{goPluginQuit}, goPlugin},
		{"plugin ended through go-plugin's quit, without TLS", []host.Option{goPluginQuit, host.WithAutoMTLS(false)}, goPlugin},
	} {
		t.Run(c.name, func(t *testing.T) {
			for range 3 {
				var logs testutil.Buffer
				logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &logs})
				cl, err := host.Load(filepath.Join(bin, "svcplugin"), append([]host.Option{host.WithLogger(logger)}, c.opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				if got := cl.Transport(); got != "socketpair" {
					t.Errorf("Transport() = %q; want socketpair", got)
				}
				if n, err := dispenseSvc(t, cl).Apply(func(x int) int { return x * 2 }, 21); err != nil || n != 42 {
					t.Errorf("Apply = %d, %v; want 42", n, err)
				}
				if err := cl.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				st, exited := cl.ExitStatus()
				if !exited || st == nil || st.ExitCode() != 0 {
					t.Errorf("after Close: ExitStatus = %v, %v; want exit status 0", st, exited)
				}
				out := logs.String()
				for _, way := range []string{hangUp, goPlugin} {
					if strings.Contains(out, way) != (way == c.way) {
						t.Errorf("the host's log says %q: %t; want %t", way, !(way == c.way), way == c.way)
					}
				}
				if !strings.Contains(out, "svcplugin: served") {
					t.Errorf("the plugin's last log line did not reach the host before Close returned:\n%s", out)
				}
				for _, bad := range []string{"[WARN]", "[ERROR]", "did not hang up within a second", "failed to exit gracefully"} {
					if strings.Contains(out, bad) {
						t.Errorf("the log holds %q:\n%s", bad, out)
					}
				}
			}
		})
	}
}

// TestSocketGarbageRefused: a plugin whose socket begins with something
// other than the mark of a plugin serving there fails Load, with the byte
// named.
func TestSocketGarbageRefused(t *testing.T) {
	garbage := host.WithCmd(func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, "REFPLUG_TEST_SOCKET_GARBAGE=1") })
	cl, err := host.Load(filepath.Join(bin, "svcplugin"), host.WithLogger(testutil.Logger(t, "host")), garbage)
	if err == nil {
		cl.Close()
		t.Fatal("Load succeeded")
	}
	if !strings.Contains(err.Error(), "0x42") || !strings.Contains(err.Error(), "not the mark") {
		t.Errorf("Load = %v; want the byte named", err)
	}
}
