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
	a, b := socketConns(t, 0)
	logger := testutil.Logger(t, "test")
	pluginSide = refbroker.NewConn(b, refbroker.Options{Logger: logger.Named("plugin"), Roots: map[string]any{"svc": contract.NewService(nil)}})
	hostSide = refbroker.NewConn(a, refbroker.Options{Logger: logger.Named("host")})
	t.Cleanup(func() {
		hostSide.Close()
		pluginSide.Close()
	})
	return hostSide, pluginSide
}

// socketConns returns the ends of a unix socket pair, each asking for
// send and receive buffers of bufs bytes if bufs > 0.
func socketConns(tb testing.TB, bufs int) (a, b net.Conn) {
	tb.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		if bufs > 0 {
			for _, opt := range []int{syscall.SO_SNDBUF, syscall.SO_RCVBUF} {
				syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, opt, bufs)
			}
		}
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	return conn(fds[0]), conn(fds[1])
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
