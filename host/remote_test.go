package host_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/scenario"
	"github.com/refplug/refplug/internal/testutil"
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

// startRemote starts testdata/remoteplugin on a loopback port with TLS
// (client certificates required), and returns its address, a TLS
// configuration with a client certificate its CA signed, that CA's pool,
// and its process ID. It runs until the test ends.
func startRemote(t *testing.T) (addr string, clientTLS *tls.Config, roots *x509.CertPool, pid int) {
	t.Helper()
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
	addr, err = bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the plugin's address: %v", err)
	}
	roots = x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	pair, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS = &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	return strings.TrimSpace(addr), clientTLS, roots, cmd.Process.Pid
}

// TestRemotePlugin: a plugin serving on TCP with mutual TLS, attached to
// over loopback; a host without a client certificate is refused; the
// plugin keeps serving after a host detaches.
func TestRemotePlugin(t *testing.T) {
	addr, clientTLS, roots, _ := startRemote(t)
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

// hungServer listens on ln as a go-plugin server that has hung would: its
// yamux session accepts the host's streams and answers pings (yamux does
// that by itself) but nothing answers a call. It returns how many of the
// sessions it accepted are still open.
func hungServer(t *testing.T, ln net.Listener) (open func() int) {
	var mu sync.Mutex
	var sessions []*yamux.Session
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			cfg := yamux.DefaultConfig()
			cfg.LogOutput = io.Discard
			s, err := yamux.Server(conn, cfg)
			if err != nil {
				conn.Close()
				continue
			}
			mu.Lock()
			sessions = append(sessions, s)
			mu.Unlock()
			go func() {
				for {
					st, err := s.Accept()
					if err != nil {
						return
					}
					go io.Copy(io.Discard, st) // read the calls, answer none
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, s := range sessions {
			s.Close()
		}
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range sessions {
			if !s.IsClosed() {
				n++
			}
		}
		return n
	}
}

// TestAttachToAHungServer: a server that answers yamux's ping (so the
// probe passes) but none of go-plugin's calls holds Attach for no longer
// than its start timeout, and AttachContext for no longer than its
// context; the connection is then closed, not left behind.
func TestAttachToAHungServer(t *testing.T) {
	for _, c := range []struct {
		name   string
		attach func(addr string) (*host.Client, error)
		want   func(error) bool
	}{
		{"start timeout", func(addr string) (*host.Client, error) {
			return host.Attach(addr, host.WithLogger(testutil.Logger(t, "host")), host.WithStartTimeout(300*time.Millisecond))
		}, func(err error) bool {
			return strings.Contains(err.Error(), "not connected within the start timeout (300ms, WithStartTimeout)")
		}},
		{"context", func(addr string) (*host.Client, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			return host.AttachContext(ctx, addr, host.WithLogger(testutil.Logger(t, "host")))
		}, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			open := hungServer(t, ln)
			done := make(chan error, 1)
			go func() {
				cl, err := c.attach(ln.Addr().String())
				if err == nil {
					cl.Close()
				}
				done <- err
			}()
			err = testutil.Receive(t, done, 10*time.Second, "Attach to a hung server is still waiting, well past its 300 ms")
			if err == nil || !c.want(err) {
				t.Fatalf("Attach to a hung server = %v", err)
			}
			testutil.Eventually(t, "the host to close its connection to the hung server", func() bool { return open() == 0 })
		})
	}
}

// TestReattachToAHungPlugin: likewise for ReattachContext, on a unix
// socket.
func TestReattachToAHungPlugin(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "plugin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	open := hungServer(t, ln)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		c, err := host.ReattachContext(ctx, host.ReattachInfo{Name: "hung", Network: "unix", Address: sock, Pid: os.Getpid(), Protocol: "netrpc", ProtocolVersion: 1}, host.WithLogger(testutil.Logger(t, "host")))
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	err = testutil.Receive(t, done, 10*time.Second, "Reattach to a hung plugin is still waiting, well past its 300 ms")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "reattach to hung") {
		t.Fatalf("Reattach to a hung plugin = %v; want the context's deadline, the plugin named", err)
	}
	testutil.Eventually(t, "the host to close its connection to the hung plugin", func() bool { return open() == 0 })
}

// TestStartTimeoutMustBePositive: a start timeout no start could meet is
// refused at once, by Load, Attach and Reattach alike, and so is a
// negative limit.
func TestStartTimeoutMustBePositive(t *testing.T) {
	const limit = "WithMaxImports(-3): a limit cannot be negative (0 means the default, 1,048,576)"
	if _, err := host.Attach("127.0.0.1:1", host.WithMaxImports(-3)); err == nil || !strings.Contains(err.Error(), limit) {
		t.Errorf("Attach with WithMaxImports(-3) = %v; want %q", err, limit)
	}
	if _, err := host.Reattach(host.ReattachInfo{Name: "p", Network: "unix", Address: "/nonexistent", Pid: 1}, host.WithMaxImports(-3)); err == nil || !strings.Contains(err.Error(), limit) {
		t.Errorf("Reattach with WithMaxImports(-3) = %v; want %q", err, limit)
	}
	for _, d := range []time.Duration{0, -time.Second} {
		want := fmt.Sprintf("WithStartTimeout(%v): the start timeout must be positive", d)
		_, err := host.Load(filepath.Join(bin, "svcplugin"), host.WithStartTimeout(d))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load with WithStartTimeout(%v) = %v; want %q", d, err, want)
		}
		_, err = host.Attach("127.0.0.1:1", host.WithStartTimeout(d))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Attach with WithStartTimeout(%v) = %v; want %q", d, err, want)
		}
		_, err = host.Reattach(host.ReattachInfo{Name: "p", Network: "unix", Address: "/nonexistent", Pid: 1}, host.WithStartTimeout(d))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Reattach with WithStartTimeout(%v) = %v; want %q", d, err, want)
		}
	}
}
