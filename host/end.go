package host

import (
	"os"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/refplug/refplug/internal/gp"
)

// Ending a plugin: Close, and what says whether and how the process ended.

// Close ends the plugin: calls in flight and every later call through its
// proxies fail with refbroker.ErrDisconnected at once, and the process is
// asked to exit and, if it does not within two seconds, killed, with every
// process it started (its process group). What the plugin's methods wrote
// to stdout and stderr before Close has reached the host's log (or
// WithStdout's and WithStderr's writers) when Close returns (on Linux, on
// the socket pair; elsewhere, and with WithMuxBroker or WithReattachable,
// the last of it may be lost as the plugin exits). Close returns within 5 seconds
// whatever the plugin's descendants hold open (go-plugin itself would wait
// for its stdout and stderr to close). For a client made by Attach, Close
// disconnects within 3 seconds even from a plugin that has hung (it then
// reports that go-plugin's quit went unanswered). Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		if c.inProcess != nil {
			c.closeErr = c.inProcess()
			c.closed.Store(true)
			return
		}
		var errs *multierror.Error
		if c.detach != nil {
			// Fail this side's calls at once, then say goodbye (go-plugin's
			// quit, bounded), which closes go-plugin's session, and only then
			// close the stream: a broker stream's Close is a half-close, and
			// its reader ends only when the peer answers it, or when the
			// session under it closes (a plugin that has hung does neither).
			c.conn.Shutdown()
			err := c.detach()
			errs = multierror.Append(errs, c.conn.Close(), err)
			c.gp.Kill() // the process is not ours: this only marks the client done
		} else {
			// Fail this side's calls at once, then ask the plugin to exit
			// (by hanging up, or go-plugin's Kill: a graceful quit, then a
			// forced kill after two seconds; see kill and quit), and only
			// then close the stream: a plugin asked through go-plugin waits
			// for the host to hang up before it exits, so go-plugin's answer
			// to the quit is never lost (go-plugin issue 331).
			c.conn.Shutdown()
			c.kill()
			errs = multierror.Append(errs, c.conn.Close())
		}
		if c.guard != nil {
			c.guard.close() // go-plugin's connection is closed: its copies end
		}
		c.closeErr = errs.ErrorOrNil()
		c.closed.Store(true)
	})
	return c.closeErr
}

// ExitStatus reports how the plugin process ended: its state (exit code,
// or the signal that ended it) once it has exited, with exited true; nil
// and false while it runs. For a client made by Attach, whose process is
// not this host's, the state is always nil.
func (c *Client) ExitStatus() (state *os.ProcessState, exited bool) {
	if c.cmd == nil {
		return nil, c.Exited()
	}
	if c.knownRunning() {
		return nil, false
	}
	if !c.gp.Exited() {
		return nil, false
	}
	// go-plugin set its exited flag, under its lock, after cmd.Wait
	// returned: the state is there.
	return c.cmd.ProcessState, true
}

// kill has go-plugin end the plugin, and ends its process group: at once
// if the plugin has exited (where that can be seen), or once go-plugin's
// two seconds of grace are over and its Kill has not returned. go-plugin
// waits for the plugin's stdout and stderr to close, which a descendant
// holding them would put off for as long as it lives. So kill returns
// within closeBound, and leaves no descendant of the plugin behind.
func (c *Client) kill() {
	killed := make(chan struct{})
	go func() {
		// Once quit has ended the plugin, or it had exited by itself (it
		// crashed, or another host ended it; seen only where the exit is
		// watched: asking go-plugin could wait for its lock), go-plugin's
		// Kill only does its bookkeeping, and its complaints that its own
		// quit failed are not news (startLogger).
		ended := c.early && c.quit()
		exited, known := c.exitSeen()
		if known && !exited && c.cmd != nil && c.cmd.Process != nil {
			// go-plugin may have seen the exit (Exited said so) a moment
			// before the host's own watch has closed c.exited.
			exited = gp.ExitedNow(c.cmd.Process.Pid)
		}
		if ended || (known && exited) {
			c.quitDone.Store(true)
		}
		c.gp.Kill()
		close(killed)
	}()
	select {
	case <-killed:
	case <-time.After(groupGrace):
		c.endProc()
		if c.rpc != nil {
			// go-plugin's quit has no timeout: closing the session under
			// it fails it, and go-plugin's Kill goes on to kill the process
			// (the only way to end a reattached plugin that has hung: it is
			// not in this host's process group).
			gp.CloseSession(c.rpc)
		}
		select {
		case <-killed:
		case <-time.After(closeBound - groupGrace):
			c.log.Warn("go-plugin has not finished ending the plugin; Close returns without waiting further", "plugin", c.name)
		}
	}
	c.endProc()
}

// groupGrace is how long Close lets go-plugin end the plugin before it
// kills the plugin's process group; closeBound bounds Close as a whole.
const (
	groupGrace = 3 * time.Second
	closeBound = 5 * time.Second
)

// Exited reports whether the plugin process has exited.
//
// It agrees with the calls: once Close has returned, or a call has failed
// with refbroker.ErrDisconnected because the plugin went away, Exited is
// true. (The connection's end is seen a moment before go-plugin reaps the
// process; Exited waits for that, at most exitWait.) For a client made by
// Attach, whose process is not this host's, it reports whether this host
// has disconnected.
func (c *Client) Exited() bool {
	if c.closed.Load() {
		return true
	}
	if c.inProcess != nil { // no process: the connection is all there is
		return c.conn.Err() != nil
	}
	if c.knownRunning() {
		return false
	}
	if c.gp.Exited() {
		return true
	}
	if c.conn.Err() == nil {
		return false
	}
	if c.detach != nil { // a remote plugin: the connection is all there is
		return true
	}
	deadline := time.Now().Add(exitWait)
	for !c.gp.Exited() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return c.gp.Exited()
}

// exitWait bounds how long Exited waits for go-plugin to reap a plugin
// whose connection has ended (it exits within a second of that, or is
// killed).
const exitWait = 2 * time.Second

// dead reports whether the plugin can no longer be called: its process
// exited or its connection ended.
func (c *Client) dead() bool {
	if c.conn.Err() != nil {
		return true
	}
	if c.inProcess != nil {
		return false
	}
	if exited, known := c.exitSeen(); known {
		return exited
	}
	return c.gp.Exited()
}

// knownRunning reports that the plugin runs, as far as can be told
// without go-plugin's lock: its connection stands and its exit, where
// watched, has not been seen. (Once the connection has ended, or where the
// exit is not watched, go-plugin says: it may have reaped the process a
// moment before the host's own watch returns.)
func (c *Client) knownRunning() bool {
	exited, known := c.exitSeen()
	return known && !exited && c.conn.Err() == nil
}

// exitSeen reports whether the plugin's exit has been seen where the host
// watches for it (c.exited: Load, on Linux), with known false where it
// does not. It does not take go-plugin's lock, which go-plugin holds while
// its connection is made in the background (about 10 s, yamux's write
// timeout, if the plugin's go-plugin side does not answer): go-plugin's
// Exited waits for it.
func (c *Client) exitSeen() (exited, known bool) {
	if c.exited == nil {
		return false, false
	}
	select {
	case <-c.exited:
		return true, true
	default:
		return false, true
	}
}
