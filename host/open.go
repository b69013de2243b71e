package host

import (
	"errors"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/gp"
)

// errStart and errConnect tell open's two ways to fail apart; each wraps
// go-plugin's error.
var (
	errStart   = errors.New("start")
	errConnect = errors.New("connect")
)

type openError struct {
	stage error // errStart or errConnect
	err   error
}

func (e *openError) Error() string   { return e.err.Error() }
func (e *openError) Unwrap() error   { return e.err }
func (e *openError) Is(t error) bool { return t == e.stage }

// open is the setup Load and Attach share: it has go-plugin start (or
// reattach to) the plugin, connects to it, and returns the Client. If the
// plugin serves on its socket at once (early: Load's; see
// gp.Plugin.StartEarly), the connection starts there; otherwise it is
// dispensed through go-plugin. started runs once go-plugin's start is
// over, either way; on failure, abort runs with go-plugin's RPC client
// (nil if the start failed) to end what was begun.
func open(client *goplugin.Client, gd *goGuard, log hclog.Logger, early *earlyStart, started func(), abort func(goplugin.ClientProtocol)) (c *Client, err error) {
	defer func() {
		if err != nil {
			gd.close()
		} else {
			c.guard = gd
			gd.attach(c)
		}
	}()
	name := gd.name
	var gpc *goPluginConn
	yl := newYamuxLines(log, name)
	if early != nil && early.plugin.MayStartEarly() {
		err = gd.start(client)
		started()
		started = func() {}
		if err != nil {
			abort(nil)
			return nil, &openError{stage: errStart, err: err}
		}
		// go-plugin's connection, on its way while the socket starts. The
		// host holds its first calls (not Dispense) until it is made
		// (gpReady): its yamux session then logs through the host's
		// logger (yamuxLines) before a method can end the plugin under it.
		// With TLS the plugin also holds them until its side is served
		// (gp.StartEarly); without, which the plugin cannot tell, the
		// connection is made only once it has answered a ping.
		plain := early.plugin.MTLS == nil
		gpc = dialGoPlugin(client, gd, plain, yl)
		gpReady := make(chan struct{})
		conn, err := early.plugin.StartEarly(client.NegotiatedVersion(), gpReady)
		if err != nil {
			abort(nil)
			return nil, &openError{stage: errConnect, err: err}
		}
		if conn != nil {
			c = &Client{name: name, gp: client, conn: conn.Conn, transport: conn.Transport, early: conn.Early, hangUp: conn.HangUp, gpReady: gpReady, log: log, endProc: func() {}}
			yl.client.Store(c)
			go c.connectGoPlugin(gpc, early.timeout, early.endProc)
			return c, nil
		}
		// The plugin waits for go-plugin's Dispense (an older refplug).
	}
	var rpcClient goplugin.ClientProtocol
	if gpc != nil {
		<-gpc.done
		rpcClient, err = gpc.rpc, gpc.err
	} else if err = gd.start(client); err == nil {
		rpcClient, err = gd.connect(client)
		if err == nil {
			yl.route(rpcClient)
		}
	}
	started()
	if err != nil {
		abort(nil)
		return nil, &openError{stage: errStart, err: err}
	}
	raw, err := rpcClient.Dispense(gp.PluginName)
	if err != nil {
		abort(rpcClient)
		return nil, &openError{stage: errConnect, err: err}
	}
	conn := raw.(*gp.Connection)
	c = &Client{name: name, gp: client, rpc: rpcClient, conn: conn.Conn, transport: conn.Transport, log: log, endProc: func() {}}
	yl.client.Store(c)
	return c, nil
}
