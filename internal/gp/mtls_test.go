package gp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
)

// handshake runs a TLS handshake between client and server configs over
// a loopback connection and returns each side's error.
func handshake(client, server *tls.Config) (clientErr, serverErr error) {
	_, clientErr, serverErr = handshakeStates(client, server)
	return clientErr, serverErr
}

// handshakeStates is handshake, also returning the client's (the host's)
// connection state. The connection is buffered, as go-plugin's is: a TLS
// 1.3 server writes its session ticket as the client writes its Finished.
func handshakeStates(client, server *tls.Config) (cs tls.ConnectionState, clientErr, serverErr error) {
	a, b := loopback()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		err := tls.Server(b, server).Handshake()
		b.Close() // a client still waiting for the server's answer sees the end
		done <- err
	}()
	c := tls.Client(a, client)
	clientErr = c.Handshake()
	cs = c.ConnectionState()
	a.Close()
	return cs, clientErr, <-done
}

// loopback returns both ends of a TCP connection on the loopback
// interface.
func loopback() (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	b, err := l.Accept()
	if err != nil {
		panic(err)
	}
	return a, b
}

// credentialsOverSocket passes m's credentials over a socket pair, as the
// host does, and returns what the plugin read.
func credentialsOverSocket(t *testing.T, m *MTLS) *MTLS {
	t.Helper()
	host, slot := pluginSocket(t)
	creds, err := m.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.Write(creds); err != nil {
		t.Fatal(err)
	}
	got, err := slot.ReadCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if slot.takeVerified() == nil {
		t.Error("after ReadCredentials the slot does not hand out its socket as verified")
	}
	return got
}

// pluginSocket makes a socket pair as the host does, and returns the
// host's end and the plugin's in its slot; both are closed when the test
// ends.
func pluginSocket(t *testing.T) (host net.Conn, slot *SocketSlot) {
	t.Helper()
	host, child, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	plug, err := net.FileConn(child)
	child.Close()
	if err != nil {
		t.Fatal(err)
	}
	slot = NewSocketSlot(plug, nil)
	t.Cleanup(slot.Close)
	return host, slot
}

func selfSignedConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := selfSigned(key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, ClientAuth: tls.RequireAnyClientCert}
}

// TestMTLS: host and plugin accept each other with the credentials that
// crossed the socket, and nobody else: not a client without the host's
// key, with or without a certificate, nor a server without the plugin's.
func TestMTLS(t *testing.T) {
	m, err := NewMTLS()
	if err != nil {
		t.Fatal(err)
	}
	hostCfg, env := m.HostConfig()
	plug := credentialsOverSocket(t, m)
	plugCfg := plug.PluginConfig()

	if cErr, sErr := handshake(hostCfg, plugCfg); cErr != nil || sErr != nil {
		t.Fatalf("host ↔ plugin: %v / %v", cErr, sErr)
	}
	if !m.Pinned() {
		t.Error("the host does not record that the plugin proved its key")
	}
	if !strings.HasPrefix(env[0], MTLSEnv+"=") || !strings.HasPrefix(env[1], clientCertEnv+"=-----BEGIN CERTIFICATE") {
		t.Errorf("environment = %q", env)
	}

	stranger := selfSignedConfig(t)
	if _, sErr := handshake(stranger, plugCfg); sErr == nil || !strings.Contains(sErr.Error(), "not this plugin's host") {
		t.Errorf("a client with another key: the plugin says %v; want it refused", sErr)
	}
	noCert := &tls.Config{InsecureSkipVerify: true}
	if _, sErr := handshake(noCert, plugCfg); sErr == nil {
		t.Error("a client without a certificate: the plugin accepted it")
	}
	other, _ := NewMTLS() // another plugin's credentials, from the same host
	if _, sErr := handshake(stranger, other.PluginConfig()); sErr == nil {
		t.Error("another plugin's server accepted a stranger")
	}
	for range 3 { // made ahead or on the spot, each plugin's key is its own
		next, err := NewMTLS()
		if err != nil {
			t.Fatal(err)
		}
		if next.plugKey.Equal(other.plugKey) || next.plugKey.Equal(m.plugKey) {
			t.Fatal("two plugins got the same key")
		}
		other = next
	}

	m2, _ := NewMTLS()
	hostCfg2, _ := m2.HostConfig()
	if cErr, _ := handshake(hostCfg2, stranger); cErr == nil || !strings.Contains(cErr.Error(), "does not carry the key") {
		t.Errorf("a server posing as the plugin: the host says %v; want it refused", cErr)
	}
	if m2.Pinned() {
		t.Error("the host records a pinned plugin after refusing it")
	}
}

// TestMTLSFallback: a plugin without its socket falls back to go-plugin's
// AutoMTLS server side; the host accepts its certificate once go-plugin
// has put it in RootCAs (from the handshake line), and not otherwise.
func TestMTLSFallback(t *testing.T) {
	m, err := NewMTLS()
	if err != nil {
		t.Fatal(err)
	}
	hostCfg, _ := m.HostConfig()
	// go-plugin's AutoMTLS server: its own certificate, the host's as the
	// authority for clients.
	server := selfSignedConfig(t)
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(t, m.host.cert.Certificate[0]))
	server.ClientAuth, server.ClientCAs = tls.RequireAndVerifyClientCert, pool
	if cErr, _ := handshake(hostCfg, server); cErr == nil || !strings.Contains(cErr.Error(), "does not carry the key") {
		t.Errorf("before go-plugin read the plugin's certificate, the host says %v; want the plugin refused", cErr)
	}
	roots := x509.NewCertPool()
	roots.AddCert(mustParse(t, server.Certificates[0].Certificate[0]))
	hostCfg.RootCAs = roots // as go-plugin's loadServerCert does
	if cErr, sErr := handshake(hostCfg, server); cErr != nil || sErr != nil {
		t.Errorf("fallback: %v / %v", cErr, sErr)
	}
	if m.Pinned() {
		t.Error("the host records a pinned plugin in the fallback")
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReadCredentialsRefusesOtherBytes: a socket that does not begin with
// credentials (an old host, or a descriptor reused on the way) is
// refused, not misread.
func TestReadCredentialsRefusesOtherBytes(t *testing.T) {
	host, slot := pluginSocket(t)
	host.Write(make([]byte, credsHead))
	if _, err := slot.ReadCredentials(); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("ReadCredentials = %v; want it refused", err)
	}
	if slot.takeVerified() != nil {
		t.Error("a refused socket is handed out as verified")
	}
}

func BenchmarkMTLSHandshake(b *testing.B) {
	for range b.N {
		m, _ := NewMTLS()
		hc, _ := m.HostConfig()
		if cErr, sErr := handshake(hc, m.PluginConfig()); cErr != nil || sErr != nil {
			b.Fatal(cErr, sErr)
		}
	}
}
