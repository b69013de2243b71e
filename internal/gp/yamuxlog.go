package gp

import (
	"io"
	"log"
	"reflect"
	"unsafe"

	goplugin "github.com/hashicorp/go-plugin"
)

// RouteYamuxLog points the log of the yamux session under go-plugin's
// connection to a plugin (client, as go-plugin's Client returned it) at
// w, without dates (w's logger adds its own), and reports whether it
// could.
//
// go-plugin v1.8.0 makes that session with yamux's default configuration
// (rpc_client.go: yamux.Client(conn, nil)), whose logger writes to the
// process's standard error, and offers no option to change it: lines such
// as "[ERR] yamux: Failed to write header: broken pipe", when a plugin
// dies, bypassed the host's logger. The session is reached through
// unexported fields (RPCClient.broker, MuxBroker.session, Session.logger)
// and its *log.Logger redirected with SetOutput, which is safe while the
// session logs. Every step is checked: a go-plugin or yamux that lays
// these out otherwise leaves the lines where they were, and this reports
// false (TestRouteYamuxLog fails on such a version, so it is noticed).
func RouteYamuxLog(client goplugin.ClientProtocol, w io.Writer) bool {
	broker := brokerField(client)
	if !broker.IsValid() {
		return false
	}
	session := field(broker.Elem(), "session", reflect.Pointer)
	if !session.IsValid() || session.IsNil() {
		return false
	}
	logger := field(session.Elem(), "logger", reflect.Interface)
	if !logger.IsValid() {
		return false
	}
	// An unexported field cannot be read through reflect's Interface: read
	// it at its address (the value is addressable, reached by pointers).
	l, ok := reflect.NewAt(logger.Type(), unsafe.Pointer(logger.UnsafeAddr())).Elem().Interface().(*log.Logger)
	if !ok || l == nil {
		return false
	}
	l.SetFlags(0)
	l.SetOutput(w)
	return true
}

// CloseSession closes the yamux session under go-plugin's connection to
// a plugin (client, as go-plugin's Client returned it), and reports
// whether it could. Every call waiting on that connection then fails at
// once: go-plugin's own calls (its Dispense, its quit) have no timeout,
// and a peer that stops answering them would hold them for as long as its
// socket stays open. The session is closed through go-plugin's MuxBroker
// (its Close closes the session), which RPCClient keeps unexported; a
// go-plugin that lays it out otherwise makes this report false
// (TestCloseSession).
func CloseSession(client goplugin.ClientProtocol) bool {
	broker := brokerField(client)
	if !broker.IsValid() {
		return false
	}
	b, ok := reflect.NewAt(broker.Type(), unsafe.Pointer(broker.UnsafeAddr())).Elem().Interface().(*goplugin.MuxBroker)
	if !ok || b == nil {
		return false
	}
	b.Close()
	return true
}

// brokerField returns the MuxBroker field (not nil) of client, a
// go-plugin RPCClient, or the zero Value.
func brokerField(client goplugin.ClientProtocol) reflect.Value {
	rc, ok := client.(*goplugin.RPCClient)
	if !ok || rc == nil {
		return reflect.Value{}
	}
	broker := field(reflect.ValueOf(rc).Elem(), "broker", reflect.Pointer)
	if !broker.IsValid() || broker.IsNil() {
		return reflect.Value{}
	}
	return broker
}

// field returns v's field name if it has one of kind k, else the zero Value.
func field(v reflect.Value, name string, k reflect.Kind) reflect.Value {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	f := v.FieldByName(name)
	if !f.IsValid() || f.Kind() != k {
		return reflect.Value{}
	}
	return f
}
