package host

import (
	"fmt"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/gp"
)

// A plugin whose connection started early (gp.Plugin.StartEarly, through
// open): go-plugin's connection is dialed as soon as go-plugin's Start
// returns and made in the background (dialGoPlugin, connectGoPlugin),
// and there is no lifeline, so Close sends go-plugin's quit itself (quit).

// earlyStart is what open needs to start a plugin's connection early:
// the host's plugin, and what ends the process (endProc) if go-plugin's
// connection is not made within the start timeout.
type earlyStart struct {
	plugin  *gp.Plugin
	timeout time.Duration
	endProc func()
}

// goPluginConn is go-plugin's connection to the plugin, being made
// (dialGoPlugin): done is closed once rpc or err is set.
type goPluginConn struct {
	done chan struct{}
	rpc  goplugin.ClientProtocol
	err  error
}

// dialGoPlugin makes go-plugin's connection to a started plugin, through
// its guard (gd), on a goroutine of its own (it ends when the connection is made or fails; a
// plugin killed meanwhile fails it). With ping, the connection is made
// only once the plugin has answered a ping on it: go-plugin's Client makes
// no round trip, and its server answers only once go-plugin's Serve has
// pointed the plugin's os.Stdout and os.Stderr at its pipes, which the
// plugin's methods must not run before (see gp.SocketSlot.StartEarlyPlain).
// Once made, its yamux session logs into yl.
func dialGoPlugin(client *goplugin.Client, gd *goGuard, ping bool, yl *yamuxLines) *goPluginConn {
	g := &goPluginConn{done: make(chan struct{})}
	go func() {
		defer close(g.done)
		g.rpc, g.err = gd.connect(client)
		if g.err == nil {
			yl.route(g.rpc)
		}
		if g.err == nil && ping {
			if err := g.rpc.Ping(); err != nil {
				g.rpc, g.err = nil, fmt.Errorf("go-plugin's ping: %w", err)
			}
		}
	}()
	return g
}

// connectGoPlugin waits for go-plugin's connection to a plugin whose own
// connection started early (gpc): it carries the plugin's stdout and
// stderr, and the quit at Close (quit waits for it; so do the first
// calls, see open). Load does not wait for it: its TLS handshake, the
// bulk of it, overlaps with Dispense. If it fails, the plugin died (its connection ends by itself,
// saying so) or its go-plugin side does not answer the host that holds
// its socket: the calls, which travel on the socket, go on, and Close,
// with no quit to send, kills the process. If it is not made within the
// start timeout (go-plugin's lock, which Exited needs, is held until it
// is), the process is ended (endProc), as Load would have.
func (c *Client) connectGoPlugin(gpc *goPluginConn, timeout time.Duration, endProc func()) {
	defer close(c.gpReady)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-gpc.done:
	case <-t.C:
		c.log.Warn("go-plugin's connection to the plugin was not made within the start timeout; ending the plugin", "plugin", c.name, "timeout", timeout)
		endProc()
		<-gpc.done // fails, the process gone
	}
	if gpc.err != nil {
		if c.conn.Err() == nil {
			c.log.Warn("go-plugin's connection to the plugin failed; Close will kill it", "plugin", c.name, "error", gpc.err)
		} else {
			c.log.Debug("go-plugin's connection to the plugin failed", "plugin", c.name, "error", gpc.err)
		}
		return
	}
	c.rpc = gpc.rpc
}

// quit ends a plugin whose connection started early, which has no
// lifeline to tell it when go-plugin's answer to the quit has reached the
// host, and reports whether the plugin exited.
//
// A plugin that quits when its host hangs up (hangUp; gp.QuitEnv) is
// ended so: quit closes the socket, and the plugin, once go-plugin has
// sent on what it wrote to stdout and stderr, exits; quit waits for the
// exit and then for the host's copies of that output to end (waitOutputs),
// before go-plugin's Kill closes the streams they read. go-plugin's own
// quit, the first message on its connection, cold on both sides, is not
// sent.
//
// Otherwise (a plugin of an older refplug), once go-plugin's connection is
// made (connectGoPlugin), quit sends go-plugin's quit (its RPC client's
// Close, as go-plugin's Kill would), then closes the socket, which the
// plugin waits for before it exits, so that the answer is in before the
// plugin is gone (go-plugin issue 331); then it waits for the plugin's
// exit, as long as go-plugin's Kill would.
//
// Either way go-plugin's Kill, called next, then finds the process gone:
// its own quit fails, and what is left is its bookkeeping (the process
// reaped, its stderr read to the end).
func (c *Client) quit() bool {
	if c.hangUp {
		c.awaitGoPlugin(goPluginWait)
		c.log.Debug("ending the plugin: hanging up", "plugin", c.name)
		c.conn.Close()
		if !c.awaitExit() {
			return false
		}
		c.waitOutputs()
		return true
	}
	c.log.Debug("ending the plugin: go-plugin's quit, then hanging up", "plugin", c.name)
	<-c.gpReady
	if c.rpc == nil { // go-plugin's connection failed: Kill ends the process
		c.conn.Close()
		return false
	}
	err := c.rpc.Close()
	c.conn.Close()
	if err != nil {
		c.log.Debug("go-plugin's quit failed; go-plugin's Kill tries again", "plugin", c.name, "error", err)
		return false
	}
	return c.awaitExit()
}

// awaitGoPlugin waits, for at most d, until go-plugin's connection is
// made or has failed (connectGoPlugin), and reports whether it is made.
//
// quit waits so (goPluginWait) before it hangs up: the yamux session
// under that connection logs to the process's standard error until it
// can be given the host's logger (yamuxLines), which is only once
// go-plugin's Client has returned, and a plugin that went away while the
// session was being set up, as it did when Close came at once after Load,
// left "[ERR] yamux: Failed to write header: EOF" there. A call waits for
// the connection anyway (open), so only a Close with no call before it
// waits there, for what is left of a TLS handshake.
func (c *Client) awaitGoPlugin(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.gpReady:
		return c.rpc != nil
	case <-t.C:
		return false
	}
}

// awaitExit waits for the plugin to exit, for at most quitGrace (as long
// as go-plugin's Kill would), and reports whether it did.
func (c *Client) awaitExit() bool {
	if c.exited != nil {
		select {
		case <-c.exited:
			return true
		case <-time.After(quitGrace):
			return false
		}
	}
	deadline := time.Now().Add(quitGrace)
	for !c.gp.Exited() { // the exit cannot be awaited here: look
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// waitOutputs waits, for at most outputWait, until the host's copies of
// the exited plugin's stdout and stderr have ended: go-plugin's
// connection has then ended too, and everything the plugin sent on it
// has been read and written where WithStdout and WithStderr (or the log)
// say. There is nothing to wait for if go-plugin's connection was never
// made (it failed, or quit hung up before it was).
func (c *Client) waitOutputs() {
	if !c.awaitGoPlugin(outputWait) {
		return
	}
	timeout := time.NewTimer(outputWait)
	defer timeout.Stop()
	for _, o := range c.outputs {
		select {
		case <-o.done:
		case <-timeout.C:
			c.log.Debug("the plugin's output had not all been copied a second after it exited; Close goes on", "plugin", c.name)
			return
		}
	}
}

// outputWait bounds waitOutputs.
const outputWait = time.Second

// goPluginWait bounds awaitGoPlugin: go-plugin's connection is made within
// a few milliseconds of Load even on a loaded machine (its TLS handshake
// resumes a session), so a plugin whose go-plugin side never answers
// costs Close this much, not a second.
const goPluginWait = 250 * time.Millisecond

// quitGrace is how long quit waits for the plugin to exit: go-plugin's
// Kill waits as long before it kills the process.
const quitGrace = 2 * time.Second
