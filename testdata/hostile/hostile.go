// Package hostile holds what the hostile test plugins (mutegp, floodgp)
// share: serving on their socket pair as a refplug plugin does, while
// their go-plugin side misbehaves.
package hostile

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"

	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// Socket takes the plugin's socket pair as a refplug plugin does: it reads
// its TLS credentials from it, unless the host runs without TLS (plain),
// and returns the slot and, with TLS, the configuration of go-plugin's
// server side.
func Socket() (slot *gp.SocketSlot, plain bool, config *tls.Config, err error) {
	slot = gp.NewSocketSlot(gp.InheritedSocket())
	plain = os.Getenv(gp.EarlyEnv) == "1"
	if !plain {
		m, err := slot.ReadCredentials()
		if err != nil {
			return nil, false, nil, err
		}
		config = m.PluginConfig()
	}
	return slot, plain, config, nil
}

// ServeEarly serves contract.NewService as "svc" on slot's socket, as a
// refplug plugin started early does (with TLS, whose credentials the
// caller has read from slot, unless plain), prints go-plugin's handshake
// line naming addr as the plugin's go-plugin side, and returns once the
// host has closed the socket (it is done with the plugin).
func ServeEarly(slot *gp.SocketSlot, plain bool, addr net.Addr) error {
	plugins := map[int]*gp.Plugin{1: {Roots: map[string]any{"svc": contract.NewService(func() refbroker.Stats { return refbroker.Stats{} })}}}
	done := make(chan error, 1)
	ready := make(chan struct{}) // no go-plugin Serve here to wait for
	close(ready)
	started := func(c *refbroker.Conn, err error) {
		if err == nil {
			<-c.Done()
		}
		done <- err
	}
	var err error
	if plain {
		err = slot.StartEarlyPlain(plugins, started)
	} else {
		err = slot.StartEarly(plugins, ready, started)
	}
	if err != nil {
		return err
	}
	fmt.Printf("1|1|unix|%s|netrpc|\n", addr)
	return <-done
}
