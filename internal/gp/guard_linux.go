package gp

import (
	"net"
	"os"
	"syscall"
)

// CanGuard: the guard tells go-plugin's connection from another
// process's by its pid (guardPeer).
const CanGuard = true

// guardPeer reports whether c, a connection to a guard's socket, comes
// from this process (its peer's credentials, SO_PEERCRED): another
// process of the same user, which may enter the guard's directory, is
// refused.
func guardPeer(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	err2 := raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	return err2 == nil && err == nil && cred != nil && int(cred.Pid) == os.Getpid()
}
