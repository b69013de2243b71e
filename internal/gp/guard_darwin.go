package gp

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// CanGuard: the guard tells go-plugin's connection from another
// process's by its pid (guardPeer).
const CanGuard = true

// guardPeer reports whether c, a connection to a guard's socket, comes
// from this process (its peer's pid, LOCAL_PEERPID): another process of
// the same user, which may enter the guard's directory, is refused.
func guardPeer(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	pid := -1
	err2 := raw.Control(func(fd uintptr) {
		pid, err = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	})
	return err2 == nil && err == nil && pid == os.Getpid()
}
