package host

import "time"

// The end of a plugin whose connection started early (gp.Plugin.StartEarly,
// through open): its go-plugin connection is made after Load, and there is
// no lifeline, so Close sends go-plugin's quit itself (quit).

// connectGoPlugin makes go-plugin's connection to a plugin whose own
// connection started early: it carries the plugin's stdout and stderr
// once the plugin is serving, and the quit at Close (quit waits for it).
// Load does not wait for it: its TLS handshake, the bulk of it, overlaps
// with the first calls. If it fails, the plugin died (its connection ends
// by itself, saying so) or its go-plugin side does not answer the host
// that holds its socket: the calls, which travel on the socket, go on,
// and Close, with no quit to send, kills the process.
func (c *Client) connectGoPlugin() {
	defer close(c.gpReady)
	rpc, err := c.gp.Client()
	if err != nil {
		if c.conn.Err() == nil {
			c.log.Warn("go-plugin's connection to the plugin failed; Close will kill it", "plugin", c.name, "error", err)
		} else {
			c.log.Debug("go-plugin's connection to the plugin failed", "plugin", c.name, "error", err)
		}
		return
	}
	c.rpc = rpc
}

// quit ends a plugin whose connection started early, which has no
// lifeline to tell it when go-plugin's answer to the quit has reached the
// host. Once go-plugin's connection is made (connectGoPlugin), it sends
// go-plugin's quit (its RPC client's Close, as go-plugin's Kill would),
// then closes the socket, which the plugin waits for before it exits, so
// that the answer is in before the plugin is gone (go-plugin issue 331);
// then it waits for the plugin's exit, as long as go-plugin's Kill would.
// It reports whether the plugin exited. go-plugin's Kill, called next,
// then finds its client closed and the process gone: its own quit fails,
// and what is left is its bookkeeping (the process reaped, its output
// read to the end).
func (c *Client) quit() bool {
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
	deadline := time.Now().Add(quitGrace)
	if c.exited != nil {
		select {
		case <-c.exited:
			return true
		case <-time.After(quitGrace):
			return false
		}
	}
	for !c.gp.Exited() { // the exit cannot be awaited here: look
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// quitGrace is how long quit waits for the plugin to exit: go-plugin's
// Kill waits as long before it kills the process.
const quitGrace = 2 * time.Second
