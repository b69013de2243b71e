//go:build unix

package refbroker_test

import (
	"net"
	"os"
	"syscall"
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
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	logger := testutil.Logger(t, "test")
	pluginSide = refbroker.NewConn(conn(fds[1]), refbroker.Options{Logger: logger.Named("plugin"), Roots: map[string]any{"svc": contract.NewService(nil)}})
	hostSide = refbroker.NewConn(conn(fds[0]), refbroker.Options{Logger: logger.Named("host")})
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
