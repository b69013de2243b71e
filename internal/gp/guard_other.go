//go:build !linux && !darwin

package gp

import "net"

// CanGuard is false: the kernel does not tell the guard the pid of the
// process at the other end of its socket, so go-plugin's connection to
// the guard is under TLS instead (guardHopTLS).
const CanGuard = false

func guardPeer(c *net.UnixConn) bool { return false }
