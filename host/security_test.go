package host_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/internal/testutil"
)

// attacker is what a process that found a plugin's socket would dispense:
// refplug's own go-plugin plugin, asking for a connection to the roots.
var attacker = goplugin.PluginSet{gp.PluginName: &gp.Plugin{}}

// TestOtherProcessesCannotConnect: with default options, another local
// process that finds the plugin's go-plugin socket (its name is in the
// host's debug log, and in /tmp for anyone to list) cannot use it: not
// without TLS, not with a certificate of its own, not without one. The
// plugin's objects are reachable from its host only, which goes on calling
// them.
//
// It holds for refplug's own mutual TLS (the plugin got its socket), for
// go-plugin's AutoMTLS, its fallback (a wrapper closed the socket on the
// way), and, for the plugin's objects, without TLS.
func TestOtherProcessesCannotConnect(t *testing.T) {
	t.Run("socketpair", func(t *testing.T) {
		testOthersCannotConnect(t, filepath.Join(bin, "svcplugin"), "socketpair")
	})
	t.Run("fallback", func(t *testing.T) {
		testOthersCannotConnect(t, closingWrapper(t, "svcplugin"), "muxbroker")
	})
	// Without TLS the plugin serves its host on the socket pair before its
	// go-plugin socket answers anyone, and refuses any other connection.
	t.Run("without TLS", func(t *testing.T) {
		testOthersCannotConnect(t, filepath.Join(bin, "svcplugin"), "socketpair", host.WithAutoMTLS(false))
	})
}

func testOthersCannotConnect(t *testing.T, path, transport string, opts ...host.Option) {
	var log testutil.Buffer
	c, err := host.Load(path, append([]host.Option{host.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &log}))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Transport() != transport {
		t.Fatalf("Transport() = %q; want %s", c.Transport(), transport)
	}
	// The plugin's own debug line names it; Load may return before the
	// line has been forwarded.
	var m []string
	testutil.Eventually(t, "the host's debug log to name the plugin's address", func() bool {
		m = regexp.MustCompile(`plugin address: .*address=(\S+)`).FindStringSubmatch(log.String())
		return m != nil
	})
	addr := m[1]

	// No TLS: go-plugin's own client, as glue without AutoMTLS would speak.
	if conn, err := net.Dial("unix", addr); err != nil {
		t.Fatalf("dialing the plugin's socket: %v", err)
	} else {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		rpc, err := goplugin.NewRPCClient(conn, attacker)
		if err == nil {
			_, err = rpc.Dispense(gp.PluginName)
			rpc.Close()
		}
		if err == nil {
			t.Error("a client without TLS dispensed the plugin")
		}
		conn.Close()
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"a certificate of its own", &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}},
		{"no certificate", &tls.Config{InsecureSkipVerify: true}},
	} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "unix", addr, tc.cfg)
		if err == nil {
			// TLS 1.3: the server's verdict on the client's certificate
			// arrives with the first read.
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			var rpc *goplugin.RPCClient
			if rpc, err = goplugin.NewRPCClient(conn, attacker); err == nil {
				_, err = rpc.Dispense(gp.PluginName)
				rpc.Close()
			}
			conn.Close()
		}
		if err == nil {
			t.Errorf("a client with %s dispensed the plugin", tc.name)
		}
	}

	if n, err := dispenseSvc(t, c).Apply(func(x int) int { return x + 1 }, 1); err != nil || n != 2 {
		t.Errorf("the host's own calls after the attempts: Apply = %d, %v; want 2", n, err)
	}
}
