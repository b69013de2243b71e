package gp

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestSocketPairBuffers: both ends of the plugin's socket pair have the
// buffers SocketBuffer asks for, as far as the kernel allows (Linux
// doubles the request, for its bookkeeping, and caps it at
// net.core.wmem_max and rmem_max).
func TestSocketPairBuffers(t *testing.T) {
	hostEnd, child, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer hostEnd.Close()
	host, plugin := hostFD(t, hostEnd), rawFD(t, child) // rawFD closes child
	defer syscall.Close(plugin)
	for _, c := range []struct {
		end    string
		fd     int
		opt    int
		name   string
		sysctl string
	}{
		{"host", host, syscall.SO_SNDBUF, "SO_SNDBUF", "wmem_max"},
		{"host", host, syscall.SO_RCVBUF, "SO_RCVBUF", "rmem_max"},
		{"plugin", plugin, syscall.SO_SNDBUF, "SO_SNDBUF", "wmem_max"},
		{"plugin", plugin, syscall.SO_RCVBUF, "SO_RCVBUF", "rmem_max"},
	} {
		got, err := syscall.GetsockoptInt(c.fd, syscall.SOL_SOCKET, c.opt)
		if err != nil {
			t.Fatalf("%s end: %s: %v", c.end, c.name, err)
		}
		if want := 2 * min(SocketBuffer, sysctl(t, c.sysctl)); got != want {
			t.Errorf("%s end: %s = %d; want %d (twice SocketBuffer, or net.core.%s)", c.end, c.name, got, want, c.sysctl)
		}
	}
}

func hostFD(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

func sysctl(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
