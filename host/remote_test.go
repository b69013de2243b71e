package host_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"

	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/scenario"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// testCA makes a CA and certificates it signs, for loopback mTLS.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "refplug test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, serial int64, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestRemotePlugin: a plugin serving on TCP with mutual TLS, attached to
// over loopback; a host without a client certificate is refused; the
// plugin keeps serving after a host detaches.
func TestRemotePlugin(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serverCert, serverKey := ca.issue(t, 2, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, 3, x509.ExtKeyUsageClientAuth)
	cmd := exec.Command(filepath.Join(bin, "remoteplugin"), write("server.pem", serverCert), write("server.key", serverKey), write("ca.pem", ca.pem))
	cmd.Stderr = testutil.Writer{T: t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the plugin's address: %v", err)
	}
	addr = strings.TrimSpace(addr)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	pair, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}

	for round := range 2 { // the plugin serves one host after another
		c, err := host.Attach(addr, host.WithTLS(clientTLS), host.WithLogger(testutil.Logger(t, "host")))
		if err != nil {
			t.Fatalf("Attach (round %d): %v", round, err)
		}
		if got := c.Transport(); got != "muxbroker" { // the only way over a network
			t.Errorf("Transport() = %q; want muxbroker", got)
		}
		svc, err := host.Dispense[contract.Service](c, "svc")
		if err != nil {
			t.Fatal(err)
		}
		scenario.Callbacks(t, svc)
		scenario.ObjectsFromObjects(t, svc)
		scenario.Identity(t, svc)
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if !c.Exited() {
			t.Error("Exited() = false right after Close returned")
		}
		if st, exited := c.ExitStatus(); st != nil || !exited {
			t.Errorf("ExitStatus of an attached plugin after Close = %v, %v; want nil, true", st, exited)
		}
		if _, err := svc.Sum(1); !errors.Is(err, refbroker.ErrDisconnected) {
			t.Errorf("Sum after detaching = %v; want ErrDisconnected", err)
		}
	}

	// Without a client certificate the plugin refuses the host.
	noCert := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	// Attach says so itself (not yamux, on the process's stderr).
	if c, err := host.Attach(addr, host.WithTLS(noCert), host.WithLogger(testutil.Logger(t, "host"))); err == nil {
		c.Close()
		t.Errorf("a host without a client certificate attached")
	} else if !strings.Contains(err.Error(), "TLS: the plugin refused this host") || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("Attach without a client certificate = %v; want the plugin's refusal named", err)
	}
	// Without TLS at all, likewise.
	if c, err := host.Attach(addr, host.WithLogger(testutil.Logger(t, "host"))); err == nil {
		c.Close()
		t.Errorf("a host without TLS attached")
	}
}

// TestAttachToSomethingElse: Attach to an address where something other
// than a refplug plugin listens fails within its probe's wait, saying what
// it found, rather than after yamux's keepalive gives up (~40 s for a port
// that accepts and says nothing).
func TestAttachToSomethingElse(t *testing.T) {
	defer host.SetProbeWait(300 * time.Millisecond)()
	for _, c := range []struct {
		name  string
		serve func(net.Conn)
		want  string
	}{
		{"silent", func(net.Conn) {}, "no answer to go-plugin's yamux ping within 300ms"},
		{"another protocol", func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")) }, "it answered go-plugin's yamux ping with 53 53 48"},
		{"hangs up", func(c net.Conn) { c.Close() }, "it did not answer go-plugin's yamux ping"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var conns []net.Conn
			var mu sync.Mutex
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					mu.Lock()
					conns = append(conns, conn)
					mu.Unlock()
					c.serve(conn)
				}
			}()
			t.Cleanup(func() {
				ln.Close()
				mu.Lock()
				defer mu.Unlock()
				for _, conn := range conns {
					conn.Close()
				}
			})
			done := make(chan error, 1)
			go func() {
				cl, err := host.Attach(ln.Addr().String(), host.WithLogger(testutil.Logger(t, "host")))
				if err == nil {
					cl.Close()
				}
				done <- err
			}()
			err = testutil.Receive(t, done, 10*time.Second, "Attach is still waiting, well past its probe's 300 ms")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Attach = %v; want an error containing %q", err, c.want)
			}
		})
	}
}

// TestReattachToSomethingElse: Reattach with information that leads to a
// socket where no plugin answers (the plugin gone, its address reused)
// fails within the probe's wait, saying so.
func TestReattachToSomethingElse(t *testing.T) {
	defer host.SetProbeWait(300 * time.Millisecond)()
	sock := filepath.Join(t.TempDir(), "plugin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // silent until the test ends
		}
	}()
	done := make(chan error, 1)
	go func() {
		c, err := host.Reattach(host.ReattachInfo{Name: "gone", Network: "unix", Address: sock, Pid: os.Getpid(), Protocol: "netrpc"}, host.WithLogger(testutil.Logger(t, "host")))
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	err = testutil.Receive(t, done, 10*time.Second, "Reattach is still waiting, well past its probe's 300 ms")
	if err == nil || !strings.Contains(err.Error(), "no answer to go-plugin's yamux ping within 300ms") || !strings.Contains(err.Error(), "WithReattachable") {
		t.Errorf("Reattach = %v; want the silence named, with the hint", err)
	}
}
