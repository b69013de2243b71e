package gp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"sync/atomic"
	"time"
)

// refplug's mutual TLS for go-plugin's connection, the default when the
// host made a socket pair (host.WithAutoMTLS).
//
// go-plugin's AutoMTLS makes a P-521 key and certificate on each side and
// shakes hands with them: about 15 ms of each process's start-up, spent
// before anything else can happen. refplug keeps its guarantees at a
// fraction of the cost. The host makes a P-256 key and certificate for the
// plugin (its own it makes once per process), and before it starts the
// plugin writes the plugin's key and certificate and its own public key
// down its end of the private socket pair, which nothing but the plugin process can
// read (see SocketPair). Each side then accepts only a peer whose
// certificate carries the other's key, or, as their handshake normally
// goes, one that proves a pre-shared key derived from the plugin's
// private key (resume.go). A process that connects to the
// plugin's go-plugin socket without the host's key cannot complete the
// handshake, nor can a process posing as the plugin fool the host. (P-256,
// not Ed25519: a fresh process's first Ed25519 key costs about 0.7 ms of
// self-tests and tables, P-256's about 0.1 ms; and the host, whose crypto
// is warm, makes both certificates, so the plugin makes none.)
//
// A plugin that did not get its socket (a wrapper script between host and
// plugin closed it) cannot read its key; it then falls back to go-plugin's
// own AutoMTLS server side, with the host's certificate, which the host
// also passes as go-plugin's PLUGIN_CLIENT_CERT: go-plugin sends the
// plugin's certificate in its handshake line and the host checks the
// plugin against it, as go-plugin's AutoMTLS does.

// MTLSEnv tells the plugin process that its host uses refplug's mutual
// TLS: its credentials are the first thing on its socket.
const MTLSEnv = "REFPLUG_MTLS"

// clientCertEnv is where go-plugin's AutoMTLS looks for the host's
// certificate (the fallback).
const clientCertEnv = "PLUGIN_CLIENT_CERT"

// The credentials the host writes down the socket: a version byte, the
// plugin's private key (a P-256 scalar), the host's public key
// (uncompressed point), and the plugin's certificate (DER, after its
// length in two bytes, big-endian).
const (
	credsVersion = 1
	scalarSize   = 32
	pointSize    = 65
	credsHead    = 1 + scalarSize + pointSize + 2
	maxCredsCert = 4 << 10
)

// MTLS holds one host–plugin pair's keys: on the host, both private keys
// and the plugin's certificate; in the plugin, its private key and
// certificate and the host's public key.
type MTLS struct {
	host     *identity // the host only
	hostPub  *ecdsa.PublicKey
	plugKey  *ecdsa.PrivateKey
	plugCert []byte
	// In the plugin, the key and the host's public key as they came
	// down the socket (plugKey and hostPub are nil): they are parsed only
	// in go-plugin's TLS handshake, not before the plugin's handshake line
	// (a fresh process's first ECDSA operation costs a few hundred
	// microseconds of self-tests).
	plugScalar, hostPoint []byte
	// pinned is set on the host once the plugin has proved it holds the
	// key the host gave it (so it read its socket).
	pinned atomic.Bool
	// early: the host asked the plugin to start early (see StartEarly).
	early bool
	// serving, in the plugin, is closed at the first TLS handshake
	// go-plugin's server begins (see GoPluginServing).
	serving    chan struct{}
	markedOnce sync.Once
}

// NewMTLS makes the keys of a host–plugin pair, and the plugin's
// certificate. The host's key and certificate are made once per host
// process and shared by its plugins, which learn only its public key. The
// plugin's are made ahead, one pair at a time on a goroutine of their own,
// so that the next Load finds them ready (making them takes ~0.15 ms, on
// the path of the plugin's start otherwise).
func NewMTLS() (*MTLS, error) {
	host, err := hostIdentity()
	if err != nil {
		return nil, err
	}
	var next pluginCreds
	select {
	case next = <-nextCreds:
	default:
		next = makePluginCreds()
	}
	if next.err != nil {
		return nil, next.err
	}
	if refilling.CompareAndSwap(false, true) {
		go func() {
			nextCreds <- makePluginCreds() // room: only this goroutine fills it
			refilling.Store(false)
		}()
	}
	return &MTLS{host: host, hostPub: &host.key.PublicKey, plugKey: next.key, plugCert: next.cert, serving: make(chan struct{})}, nil
}

// pluginCreds are a plugin's key and certificate.
type pluginCreds struct {
	key  *ecdsa.PrivateKey
	cert []byte
	err  error
}

var (
	nextCreds = make(chan pluginCreds, 1) // made ahead for the next NewMTLS
	refilling atomic.Bool                 // a goroutine is making the next
)

func makePluginCreds() pluginCreds {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pluginCreds{err: fmt.Errorf("making a TLS key: %w", err)}
	}
	_, cert, err := selfSigned(key)
	return pluginCreds{key: key, cert: cert, err: err}
}

// identity is the host process's TLS key and certificate.
type identity struct {
	key  *ecdsa.PrivateKey
	cert tls.Certificate
	pem  []byte
}

var hostIdentity = sync.OnceValues(func() (*identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making a TLS key: %w", err)
	}
	cert, der, err := selfSigned(key)
	if err != nil {
		return nil, err
	}
	return &identity{key: key, cert: cert, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
})

// Credentials are what the host writes down its socket for the plugin.
func (m *MTLS) Credentials() ([]byte, error) {
	scalar, err := m.plugKey.Bytes()
	if err != nil {
		return nil, err
	}
	point, err := m.hostPub.Bytes()
	if err != nil {
		return nil, err
	}
	b := append([]byte{credsVersion}, scalar...)
	b = append(b, point...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.plugCert)))
	return append(b, m.plugCert...), nil
}

// Pinned reports whether the plugin proved it holds the key the host
// wrote down its socket, so that it has its socket.
func (m *MTLS) Pinned() bool { return m.pinned.Load() }

// carries reports whether cs's peer presented a certificate for pub.
func carries(cs tls.ConnectionState, pub *ecdsa.PublicKey) bool {
	if len(cs.PeerCertificates) == 0 {
		return false
	}
	got, ok := cs.PeerCertificates[0].PublicKey.(*ecdsa.PublicKey)
	return ok && got.Equal(pub)
}

// HostConfig returns go-plugin's ClientConfig.TLSConfig for the host, and
// the environment variables the plugin process needs: MTLSEnv, asking for
// the early start (see StartEarly), and the host's certificate for the
// fallback.
func (m *MTLS) HostConfig() (*tls.Config, []string) {
	m.early = true
	cfg := &tls.Config{
		Certificates: []tls.Certificate{m.host.cert},
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
		// Go's default, post-quantum key agreement (X25519MLKEM768) costs
		// a third more time to shake hands; these keys live for one run
		// between two processes on one machine.
		CurvePreferences: []tls.CurveID{tls.X25519},
		// The plugin is checked by its key (VerifyConnection), not by a
		// chain to some authority.
		InsecureSkipVerify: true,
		// The handshake resumes a session made from the plugin's key
		// (resume.go).
		ClientSessionCache: oneSession{m.hostSession()},
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if carries(cs, &m.plugKey.PublicKey) {
			m.pinned.Store(true)
			return nil
		}
		// The fallback: go-plugin read the plugin's AutoMTLS certificate
		// from its handshake line into RootCAs (it sets them on this
		// config before it dials).
		if cfg.RootCAs != nil && len(cs.PeerCertificates) > 0 {
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: cfg.RootCAs, DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		}
		return errors.New("refplug: the plugin's certificate does not carry the key the host gave it")
	}
	return cfg, []string{MTLSEnv + "=" + earlyMTLS, clientCertEnv + "=" + string(m.host.pem)}
}

// GoPluginServing, in the plugin, is closed once go-plugin's server has
// begun a TLS handshake with this configuration: go-plugin has then done
// what its Serve does before it accepts connections, such as pointing
// os.Stdout and os.Stderr at the pipes it forwards to the host, so the
// plugin's own code may run (see StartEarly).
func (m *MTLS) GoPluginServing() <-chan struct{} { return m.serving }

func (m *MTLS) markServing() { m.markedOnce.Do(func() { close(m.serving) }) }

// PluginConfig returns go-plugin's ServeConfig TLS configuration for the
// plugin: its certificate, and only the host's key accepted. The keys
// are parsed at the first handshake.
func (m *MTLS) PluginConfig() *tls.Config {
	cert := sync.OnceValues(func() (*tls.Certificate, error) {
		key := m.plugKey
		if key == nil {
			var err error
			if key, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), m.plugScalar); err != nil {
				return nil, fmt.Errorf("refplug: the plugin's TLS key from the host: %w", err)
			}
		}
		return &tls.Certificate{Certificate: [][]byte{m.plugCert}, PrivateKey: key}, nil
	})
	hostPub := sync.OnceValues(func() (*ecdsa.PublicKey, error) {
		if m.hostPub != nil {
			return m.hostPub, nil
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), m.hostPoint)
	})
	return &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m.markServing()
			return nil, nil // this configuration
		},
		GetCertificate:   func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert() },
		ClientAuth:       tls.RequireAnyClientCert,
		MinVersion:       tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.X25519},
		UnwrapSession:    m.unwrapSession,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume { // only the host's session resumes, proving the key (resume.go)
				return nil
			}
			if pub, err := hostPub(); err == nil && carries(cs, pub) {
				return nil
			}
			return errors.New("refplug: the connecting process is not this plugin's host (its certificate does not carry the host's key)")
		},
	}
}

// selfSigned makes a certificate for key, signed by itself. It is also a
// CA certificate for "localhost", so that go-plugin's AutoMTLS server side
// (the fallback) accepts the host's as both its client's certificate and
// the authority for it.
func selfSigned(key *ecdsa.PrivateKey) (tls.Certificate, []byte, error) {
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"refplug"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(100 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("making a TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der, nil
}

// ReadCredentials reads the host's TLS credentials (see Credentials)
// from the inherited socket, which stays in the slot for the connection.
// It fails if there is no socket or what it holds is not credentials.
func (s *SocketSlot) ReadCredentials() (*MTLS, error) {
	if s == nil {
		return nil, errNoSocket
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		if s.err != nil {
			return nil, s.err
		}
		return nil, errNoSocket
	}
	s.conn.SetReadDeadline(time.Now().Add(socketTimeout))
	defer s.conn.SetReadDeadline(time.Time{})
	head := make([]byte, credsHead)
	if _, err := io.ReadFull(s.conn, head); err != nil {
		return nil, fmt.Errorf("reading the TLS credentials from the socket: %w", err)
	}
	n := int(binary.BigEndian.Uint16(head[credsHead-2:]))
	if head[0] != credsVersion || n > maxCredsCert {
		return nil, fmt.Errorf("the socket does not begin with TLS credentials of version %d", credsVersion)
	}
	cert := make([]byte, n)
	if _, err := io.ReadFull(s.conn, cert); err != nil {
		return nil, fmt.Errorf("reading the TLS credentials from the socket: %w", err)
	}
	s.credentials = true
	return &MTLS{plugScalar: head[1 : 1+scalarSize], hostPoint: head[1+scalarSize : 1+scalarSize+pointSize], plugCert: cert, serving: make(chan struct{})}, nil
}
