package plugin

import (
	"crypto/tls"
	"net"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/gp"
)

// WithTLS makes ServeRemote accept only TLS connections made with cfg. For
// mutual TLS, set cfg.ClientAuth to tls.RequireAndVerifyClientCert and
// cfg.ClientCAs to the hosts' CA. Default: none; Serve ignores it (go-plugin
// sets up the local connection, and AutoMTLS when the host asks).
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// ServeRemote serves objects to hosts on other machines, which attach with
// host.Attach, through go-plugin's net/rpc server on ln (a TCP listener,
// say). Unlike Serve it needs no host to start it, serves any number of
// hosts, one after another or at once, and runs until ln stops accepting
// (closed); it returns an error only for bad objects. Use WithTLS: without
// it anyone who reaches ln can call the objects. Calls travel on a
// go-plugin broker stream (there is no process to hand a socket to).
func ServeRemote(ln net.Listener, objects map[string]any, opts ...Option) error {
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = Logger()
	}
	if err := checkObjects(objects); err != nil {
		return err
	}
	if err := cfg.check(0); err != nil { // ServeRemote serves one version: the handshake's
		return err
	}
	if cfg.tls != nil {
		ln = tls.NewListener(ln, cfg.tls)
	}
	server := &goplugin.RPCServer{
		Plugins: goplugin.PluginSet{gp.PluginName: &gp.Plugin{Roots: objects, Logger: cfg.logger.Named("refbroker"), Limits: cfg.limits}},
		// Remote hosts get no stdout or stderr of ours.
		Stdout: strings.NewReader(""),
		Stderr: strings.NewReader(""),
		// A host's request to quit ends its own connection, not the server.
		DoneCh: make(chan struct{}),
	}
	server.Serve(ln) // returns when ln stops accepting
	return nil
}
