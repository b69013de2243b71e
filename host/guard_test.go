package host_test

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// TestPluginFloodingGoPluginsConnection: a plugin that, on go-plugin's
// connection (inside its TLS, whose credentials it holds), opens stream
// after stream, asks for ping after ping, sends more than yamux's window
// at once, or begins a net/rpc answer of 8 GiB, is cut off at once: it is
// ended, the host's log and its calls say why, and the host holds none of
// what it sent. Before the guard, go-plugin's MuxBroker kept every such
// stream open with its data (the streams here: 60 MiB), yamux answered
// each ping from a goroutine of its own, and gob held the answer's bytes.
func TestPluginFloodingGoPluginsConnection(t *testing.T) {
	for _, tc := range []struct{ mode, why string }{
		{"streams", "more than 16 streams opened and left open"},
		{"pings", "more than 8 pings asked for at once"},
		{"frame", "a data frame of 1048576 bytes on stream 2, past yamux's window of 262144"},
		{"message", "a net/rpc message of 8589934591 bytes on stream 1, past the guard's 1048576"},
	} {
		for name, tls := range map[string]bool{"TLS": true, "without TLS": false} {
			t.Run(tc.mode+"/"+name, func(t *testing.T) {
				var before runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				var logs testutil.Buffer
				dir := t.TempDir()
				c, err := host.Load(filepath.Join(bin, "floodgp"),
					host.WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logs})), host.WithAutoMTLS(tls),
					host.WithCmd(func(cmd *exec.Cmd) {
						cmd.Env = append(cmd.Env, "FLOODGP_DIR="+dir, "FLOODGP_MODE="+tc.mode)
					}))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				testutil.Eventually(t, "the flooding plugin to be ended", c.Exited)
				if !strings.Contains(logs.String(), tc.why) {
					t.Errorf("the host's log does not say why the plugin was ended (%q):\n%s", tc.why, logs.String())
				}
				_, err = host.Dispense[contract.Service](c, "svc")
				if !errors.Is(err, refbroker.ErrDisconnected) || !strings.Contains(fmt.Sprint(err), "cut off") || !strings.Contains(fmt.Sprint(err), tc.why) {
					t.Errorf("Dispense from the plugin cut off = %v; want ErrDisconnected, saying it was cut off and why", err)
				}
				var after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&after)
				if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 16<<20 {
					t.Errorf("the host holds %d MiB more than before the plugin was loaded", grown>>20)
				}
			})
		}
	}
}
