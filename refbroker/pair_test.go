package refbroker

import (
	"net"
	"testing"
)

// newPair connects two Conns in-process over net.Pipe: server with
// serverOpts (its Roots are what the client can dispense), client with
// clientOpts. Both are closed when the test ends.
func newPair(tb testing.TB, serverOpts, clientOpts Options) (client, server *Conn) {
	tb.Helper()
	a, b := net.Pipe()
	server = NewConn(a, serverOpts)
	client = NewConn(b, clientOpts)
	tb.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// testPair is newPair with a server serving roots and default options.
func testPair(tb testing.TB, roots map[string]any) (client, server *Conn) {
	tb.Helper()
	return newPair(tb, Options{Roots: roots}, Options{})
}

// NewPair is newPair for the package's external tests.
var NewPair = newPair
