//go:build unix

package gp

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// SocketPair makes the private connection between a host and the plugin
// process it is about to start: a connected pair of unix stream sockets
// with no name in the file system. The host keeps conn; child goes into
// the plugin's exec.Cmd.ExtraFiles, and the host closes its copy of child
// once the process has started. Both descriptors are close-on-exec in the
// host, so no other process the host starts inherits them.
//
// Each end asks for send and receive buffers of SocketBuffer bytes.
func SocketPair() (conn net.Conn, child *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
		for _, fd := range fds {
			// A request: the kernel caps it (net.core.wmem_max), and a
			// socket without it still works, only slower for bulk data.
			_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, SocketBuffer)
			_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, SocketBuffer)
		}
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("making the plugin's socket pair: %w", err)
	}
	f := os.NewFile(uintptr(fds[0]), "refplug-host-end")
	conn, err = net.FileConn(f) // a duplicate; f is closed below either way
	f.Close()
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, fmt.Errorf("making the plugin's socket pair: %w", err)
	}
	return conn, os.NewFile(uintptr(fds[1]), "refplug-plugin-end"), nil
}

// InheritedSocket takes the socket a host passed to this plugin process
// (SocketEnv names its descriptor). It returns nil, nil when the host
// passed none. The variable is removed from the environment and the
// descriptor made close-on-exec, so the plugin's own child processes see
// neither. A descriptor that is not a socket (a wrapper between host and
// plugin reused the number) is left alone and reported.
func InheritedSocket() (net.Conn, error) {
	v, ok := os.LookupEnv(SocketEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(SocketEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("%s=%q is not a file descriptor", SocketEnv, v)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("descriptor %d from %s: %w", fd, SocketEnv, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return nil, fmt.Errorf("descriptor %d from %s is not a socket (was it closed or reused on the way?)", fd, SocketEnv)
	}
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "refplug-plugin-end")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("descriptor %d from %s: %w", fd, SocketEnv, err)
	}
	return conn, nil
}

// readNow reads one byte from conn if one is there, without waiting: the
// byte, or -1 if there is none (or the other end is closed).
func readNow(conn net.Conn) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var b [1]byte
	n := 0
	var rerr error
	err = raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), b[:])
			if rerr != syscall.EINTR {
				return true // EAGAIN too: nothing there now
			}
		}
	})
	switch {
	case err != nil:
		return -1, err
	case rerr == syscall.EAGAIN || rerr == syscall.ECONNRESET || n == 0:
		return -1, nil // nothing there, or the other end is closed
	case rerr != nil:
		return -1, rerr
	}
	return int(b[0]), nil
}
