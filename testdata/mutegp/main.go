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

	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

func main() {
	slot := gp.NewSocketSlot(gp.InheritedSocket())
	plain := os.Getenv(gp.EarlyEnv) == "1" // a host without TLS
	if !plain {
		if _, err := slot.ReadCredentials(); err != nil {
			fail(err)
		}
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
	plugins := map[int]*gp.Plugin{1: {Roots: map[string]any{"svc": contract.NewService(func() refbroker.Stats { return refbroker.Stats{} })}}}
	done := make(chan struct{})
	ready := make(chan struct{}) // no go-plugin Serve here to wait for
	close(ready)
	started := func(c *refbroker.Conn, err error) {
		if err != nil {
			fail(err)
		}
		<-c.Done()
		close(done)
	}
	if plain {
		err = slot.StartEarlyPlain(plugins, started)
	} else {
		err = slot.StartEarly(plugins, ready, started)
	}
	if err != nil {
		fail(err)
	}
	fmt.Printf("1|1|unix|%s|netrpc|\n", l.Addr())
	<-done // the host closed the socket: it is done with this plugin
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mutegp:", err)
	os.Exit(1)
}
