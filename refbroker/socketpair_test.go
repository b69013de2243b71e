//go:build unix

package refbroker_test

import (
	"testing"

	"github.com/refplug/refplug/internal/scenario"
	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// socketPair connects a host and a plugin Conn in-process over a unix
// socket pair: unlike net.Pipe it buffers, so the reader runs ahead of the
// serving goroutines as it does between processes.
func socketPair(t *testing.T) (hostSide, pluginSide *refbroker.Conn) {
	t.Helper()
	a, b := refbroker.SocketConns(t, 0)
	logger := testutil.Logger(t, "test")
	pluginSide = refbroker.NewConn(b, refbroker.Options{Logger: logger.Named("plugin"), Roots: map[string]any{"svc": contract.NewService(nil)}})
	hostSide = refbroker.NewConn(a, refbroker.Options{Logger: logger.Named("host")})
	t.Cleanup(func() {
		hostSide.Close()
		pluginSide.Close()
	})
	return hostSide, pluginSide
}

// TestFreshReferenceSocketPair: concurrent first imports of one reference,
// where the race used to show (a call failing with a reflect panic, or a
// proxy with no method set), every run of a few hundred rounds.
func TestFreshReferenceSocketPair(t *testing.T) {
	h, _ := socketPair(t)
	svc, err := refbroker.Dispense[contract.Service](h, "svc")
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		scenario.FreshReference(t, svc)
	}
}
