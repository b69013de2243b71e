package host

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/gp"
)

// goGuard puts a guard (gp.Guard) between go-plugin's connection and a
// plugin, loaded or attached to, so that a plugin speaking go-plugin's
// yamux cannot make the host hold what it sends without bound: see
// gp/guard.go and RELIABILITY.md.
type goGuard struct {
	name    string
	log     hclog.Logger
	timeout time.Duration // the start timeout
	end     func()        // ends the plugin, if it is this host's to end

	mu      sync.Mutex
	started bool
	guard   *gp.Guard
	addr    net.Addr // the plugin's own address
	client  *Client
	breach  error
}

// guardSlack is how much longer than the start timeout the guard waits to
// reach the plugin: it is only a bound, the start timeout (which ends the
// plugin, or abandons the connection) must come first, as it did before
// the guard, when go-plugin's own wait was bounded by yamux's 10 s write
// timeout.
const guardSlack = 10 * time.Second

// start is go-plugin's Start (the process and go-plugin's handshake, or
// the reattach), then the guard, once; go-plugin's connection, made after
// it, goes through the guard. A go-plugin the guard cannot be fitted to
// (another version) connects directly, saying so in the host's log.
func (gd *goGuard) start(client *goplugin.Client) error {
	if _, err := client.Start(); err != nil {
		return err
	}
	gd.mu.Lock()
	defer gd.mu.Unlock()
	if gd.started {
		return nil
	}
	gd.started = true
	g, addr, err := gp.GuardClient(client, gd.timeout+guardSlack, gd.cutOff)
	if err != nil {
		gd.log.Warn("go-plugin's connection to the plugin is not guarded", "plugin", gd.name, "error", err)
		return nil
	}
	gd.guard, gd.addr = g, addr
	return nil
}

// connect is go-plugin's Client (its connection to the plugin), made once
// the guard has reached the plugin, as go-plugin's would have been.
func (gd *goGuard) connect(client *goplugin.Client) (goplugin.ClientProtocol, error) {
	gd.mu.Lock()
	g := gd.guard
	gd.mu.Unlock()
	if g != nil {
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	return client.Client()
}

// cutOff is the guard's word that the plugin broke its rules: the host's
// connection to the plugin ends, saying why, and the plugin with it.
func (gd *goGuard) cutOff(why error) {
	err := fmt.Errorf("host: plugin %s was cut off for what it sent on go-plugin's connection: %w", gd.name, why)
	gd.log.Error("the plugin broke the rules of go-plugin's connection; it was cut off", "plugin", gd.name, "error", why)
	gd.mu.Lock()
	gd.breach = err
	c := gd.client
	gd.mu.Unlock()
	if c != nil {
		c.conn.CloseWithError(err)
	}
	if gd.end != nil {
		gd.end()
	}
}

// attach tells the guard the client it serves: a breach found before
// ends its connection at once.
func (gd *goGuard) attach(c *Client) {
	gd.mu.Lock()
	gd.client = c
	err := gd.breach
	gd.mu.Unlock()
	if err != nil {
		c.conn.CloseWithError(err)
	}
}

// pluginAddr is the plugin's own address, which go-plugin no longer knows
// (it dials the guard), or nil if there is no guard (nil gd: InProcess).
func (gd *goGuard) pluginAddr() net.Addr {
	if gd == nil {
		return nil
	}
	gd.mu.Lock()
	defer gd.mu.Unlock()
	return gd.addr
}

// close ends the guard, its connections and goroutines.
func (gd *goGuard) close() {
	gd.mu.Lock()
	g := gd.guard
	gd.mu.Unlock()
	if g != nil {
		g.Close()
	}
}
