//go:build !unix

package gp

import (
	"errors"
	"net"
	"os"
)

// SocketPair is not available on this system: refbroker's traffic goes on
// a go-plugin broker stream instead.
func SocketPair() (net.Conn, *os.File, error) {
	return nil, nil, errors.New("no unix socket pairs on this system")
}

// InheritedSocket reports that no host passes sockets on this system.
func InheritedSocket() (net.Conn, error) {
	os.Unsetenv(SocketEnv)
	return nil, nil
}

// readNow finds nothing: there are no socket pairs here.
func readNow(net.Conn) (int, error) { return -1, nil }
