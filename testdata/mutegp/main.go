// Command mutegp is a hostile test plugin: it starts on its socket pair as
// a refplug plugin does (it reads its credentials, or without TLS does
// not, marks the socket, waits for the host's start) and serves
// contract.NewService as "svc" there, but the go-plugin side it announces
// accepts connections and never answers them: the host's TLS handshake, or
// without TLS its ping, on it stalls. Its socket goes in the directory
// $MUTEGP_DIR.
package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/refplug/refplug/testdata/hostile"
)

func main() {
	slot, plain, _, err := hostile.Socket()
	if err != nil {
		fail(err)
	}
	l, err := net.Listen("unix", filepath.Join(os.Getenv("MUTEGP_DIR"), "go-plugin.sock"))
	if err != nil {
		fail(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn // accepted, never read
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	if err := hostile.ServeEarly(slot, plain, l.Addr()); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mutegp:", err)
	os.Exit(1)
}
