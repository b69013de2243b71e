package gp

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

// TestResumedHandshake: host and plugin shake hands by resuming the
// session made from the plugin's key, with no certificate signed or
// checked, and the host records the plugin as proven.
func TestResumedHandshake(t *testing.T) {
	m, err := NewMTLS()
	if err != nil {
		t.Fatal(err)
	}
	hostCfg, _ := m.HostConfig()
	plug := credentialsOverSocket(t, m)
	serving := plug.GoPluginServing()
	select {
	case <-serving:
		t.Error("go-plugin said to serve before any handshake")
	default:
	}
	cs, cErr, sErr := handshakeStates(hostCfg, plug.PluginConfig())
	if cErr != nil || sErr != nil {
		t.Fatalf("host ↔ plugin: %v / %v", cErr, sErr)
	}
	select {
	case <-serving:
	default:
		t.Error("a handshake with the plugin's configuration did not say go-plugin serves")
	}
	if !cs.DidResume || cs.Version != tls.VersionTLS13 {
		t.Errorf("the handshake did not resume (DidResume %v, version %#x)", cs.DidResume, cs.Version)
	}
	if !m.Pinned() {
		t.Error("the host does not record that the plugin proved its key")
	}
}

// TestResumptionNeedsTheKey: a session offered under refplug's identity
// but made from another key fails the handshake; one the plugin does not
// know is not resumed, and the certificates are checked as without
// resumption.
func TestResumptionNeedsTheKey(t *testing.T) {
	m, _ := NewMTLS()
	plugCfg := credentialsOverSocket(t, m).PluginConfig()

	other, _ := NewMTLS() // another plugin's key and session, same host
	otherCfg, _ := other.HostConfig()
	if _, _, sErr := handshakeStates(otherCfg, plugCfg); sErr == nil {
		t.Error("the plugin accepted a session made from another plugin's key")
	}

	stranger := selfSignedConfig(t)
	strangerState, err := sessionState(make([]byte, 32), m.plugCert, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := tls.NewResumptionState([]byte("someone else's ticket"), strangerState)
	if err != nil {
		t.Fatal(err)
	}
	stranger.ClientSessionCache = oneSession{cs}
	state, _, sErr := handshakeStates(stranger, plugCfg)
	if state.DidResume || sErr == nil || !strings.Contains(sErr.Error(), "not this plugin's host") {
		t.Errorf("a stranger's session: resumed %v, plugin says %v; want a full handshake, refused", state.DidResume, sErr)
	}
}

// TestHandshakeWithoutResumption: a plugin that does not resume (of an
// older refplug) and a host that offers no session still shake hands, by
// certificates, and the host still records the plugin as proven.
func TestHandshakeWithoutResumption(t *testing.T) {
	m, _ := NewMTLS()
	hostCfg, _ := m.HostConfig()
	plugCfg := credentialsOverSocket(t, m).PluginConfig()
	oldPlug := plugCfg.Clone()
	oldPlug.UnwrapSession = nil
	cs, cErr, sErr := handshakeStates(hostCfg, oldPlug)
	if cErr != nil || sErr != nil || cs.DidResume || !m.Pinned() {
		t.Errorf("host ↔ plugin without resumption: %v / %v, resumed %v, pinned %v", cErr, sErr, cs.DidResume, m.Pinned())
	}

	m2, _ := NewMTLS()
	oldHost, _ := m2.HostConfig()
	oldHost.ClientSessionCache = nil
	cs, cErr, sErr = handshakeStates(oldHost, credentialsOverSocket(t, m2).PluginConfig())
	if cErr != nil || sErr != nil || cs.DidResume || !m2.Pinned() {
		t.Errorf("host without a session ↔ plugin: %v / %v, resumed %v, pinned %v", cErr, sErr, cs.DidResume, m2.Pinned())
	}
}
