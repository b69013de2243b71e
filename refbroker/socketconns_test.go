//go:build unix

package refbroker

import (
	"net"
	"os"
	"syscall"
	"testing"
)

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

// SocketConns is socketConns for the package's external tests.
var SocketConns = socketConns
