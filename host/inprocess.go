package host

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/hashicorp/go-multierror"
	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/refbroker"
)

// InProcess serves objects in this process, as plugin.Serve serves them in
// a plugin's, and returns a Client connected to them: every call, argument
// and result crosses as it does between host and plugin (encoded, sent
// over a socket pair, decoded; plain data by value, interfaces and funcs by
// reference), Dispense checks what it checks, and the limits hold, with no
// binary to build and no process to start. It is for tests, as go-plugin's
// TestPluginRPCConn is: of a plugin's objects without building the plugin,
// or of a host against objects that stand in for a plugin.
//
// InProcess refuses what plugin.Serve refuses (no objects, a nil one, one
// with no methods). Options: WithLogger and the limits and WithCallTimeout
// (which apply to both sides) and WithoutSpinning; the options about a
// process, the handshake, versions, TLS and the transport do not apply,
// and InProcess fails naming any that are given (WithStartTimeout, with
// nothing to start, is ignored). Close ends both sides' connections;
// Exited is true once Close has returned; ExitStatus reports no process
// state; Version is 1; ReattachInfo fails; Transport is "inprocess".
func InProcess(objects map[string]any, opts ...Option) (*Client, error) {
	cfg := newConfig(opts, config{startTimeout: DefaultStartTimeout})
	var notHere []string
	notHere = append(notHere, cfg.processOnly...)
	for _, o := range []struct {
		given bool
		name  string
	}{
		{cfg.cookieKey != "", "WithHandshake"}, {cfg.versions != nil, "WithVersions"},
		{cfg.tls != nil, "WithTLS"}, {cfg.muxBroker, "WithMuxBroker"},
	} {
		if o.given && !slices.Contains(notHere, o.name) {
			notHere = append(notHere, o.name)
		}
	}
	if len(notHere) > 0 {
		return nil, fmt.Errorf("host: in process: %s %s only to a plugin process (drop %s)", strings.Join(notHere, ", "), agree(len(notHere), "applies", "apply"), agree(len(notHere), "it", "them"))
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("host: in process: %w", err)
	}
	if err := servable(objects); err != nil {
		return nil, fmt.Errorf("host: in process: %w", err)
	}
	hostEnd, pluginEnd, err := inProcessPair()
	if err != nil {
		return nil, fmt.Errorf("host: in process: %w", err)
	}
	name := "inprocess"
	log := cfg.logger.Named(name)
	served := cfg.limits
	served.Logger, served.Roots = log.Named("plugin"), maps.Clone(objects)
	served.Side, served.PeerSide = "plugin", "host"
	pluginConn := refbroker.NewConn(pluginEnd, served)
	hosted := cfg.limits
	hosted.Logger = log.Named("refbroker")
	hosted.Side, hosted.PeerSide = "host", "plugin"
	c := &Client{
		name:      name,
		conn:      refbroker.NewConn(hostEnd, hosted),
		transport: "inprocess",
		log:       log,
	}
	c.inProcess = func() error {
		c.conn.Shutdown()
		var errs *multierror.Error
		errs = multierror.Append(errs, c.conn.Close(), pluginConn.Close())
		return errs.ErrorOrNil()
	}
	return c, nil
}

// servable refuses what plugin.Serve refuses: no objects, nil ones, and
// ones with no methods to call (gp.RootProblems).
func servable(objects map[string]any) error {
	if len(objects) == 0 {
		return fmt.Errorf("no objects to serve")
	}
	if problems := gp.RootProblems(objects); len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// inProcessPair is the two ends of an in-process connection: a socket pair
// where there is one, as Load's, or else net.Pipe.
func inProcessPair() (hostEnd, pluginEnd net.Conn, err error) {
	hostEnd, child, err := gp.SocketPair()
	if err != nil {
		a, b := net.Pipe()
		return a, b, nil
	}
	defer child.Close()
	pluginEnd, err = net.FileConn(child) // a duplicate
	if err != nil {
		hostEnd.Close()
		return nil, nil, fmt.Errorf("the plugin's end of the socket pair: %w", err)
	}
	return hostEnd, pluginEnd, nil
}
