// Package host is the host side of refplug: Load (or LoadContext) starts
// a plugin binary, Dispense (or DispenseContext) hands out the objects it
// serves as Go interface values, Close ends it. A Manager runs a directory of plugins (with
// restarts, if asked); Attach (or AttachContext) connects to a plugin
// served on the network (plugin.ServeRemote), Reattach (or
// ReattachContext) to one another host loaded WithReattachable; InProcess
// serves objects in this process as a plugin would, for tests; Ping checks
// a plugin's health; Describe and CallJSON inspect any refplug plugin.
//
// Options (options.go) set the start timeout, logging, security (AutoMTLS,
// checksum, handshake cookie, TLS for Attach), protocol versions, the
// transport, and the limits that bound what a plugin can make the host
// hold: WithMaxMessageSize, WithMaxConcurrentCalls, WithMaxServedBytes,
// WithMaxQueuedBytes, WithMaxImports, WithMaxExports; and WithCallTimeout,
// which bounds the calls a plugin could otherwise hold for ever (methods
// without a context). Dispense, Describe and Ping, which the plugin's
// refplug answers itself, wait no longer than the start timeout when
// given no context. go-plugin's own connection to a plugin passes
// through a guard (guard.go) that cuts off a plugin flooding it.
package host
