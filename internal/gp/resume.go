package gp

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"time"
)

// refplug's mutual TLS shakes hands as a TLS 1.3 resumption (a pre-shared
// key, with X25519 for forward secrecy), not with certificates.
//
// Host and plugin already share a secret no other process has: the
// plugin's private key, which the host made and wrote down the socket.
// From it both derive the same pre-shared key (resumptionPSK). The host
// offers it as a session to resume (a ClientSessionCache holding one
// session, made here rather than by an earlier handshake); the plugin's
// UnwrapSession accepts that session, and no other. Proving the key
// proves each side holds the plugin's private key: the host, which made
// it, or the plugin, which read it from the socket. So neither side signs
// or checks a certificate (about a fifth of a millisecond of a fresh
// plugin's handshake), and the handshake messages are smaller. If the
// session is refused (a plugin of an older refplug, or a Go whose session
// encoding differs), the handshake falls back to the certificates, which
// are still checked as before.

// pskIdentity is the identity under which the host offers the session.
var pskIdentity = []byte("refplug-psk-v1")

// pskLifetime bounds the host's offered session: longer than any start.
const pskLifetime = time.Hour

// resumptionPSK derives the pre-shared key from the plugin's private key
// (a P-256 scalar).
func resumptionPSK(scalar []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, scalar, nil, "refplug go-plugin connection TLS 1.3 PSK", 32)
}

// sessionState encodes a TLS 1.3 session of TLS_AES_128_GCM_SHA256 with
// secret psk and peer certificate cert, for the client if client is true,
// in the encoding crypto/tls documents for SessionState and parses with
// ParseSessionState (which Go keeps compatible across versions, as it
// shares session tickets between them).
func sessionState(psk, cert []byte, client bool, now time.Time) (*tls.SessionState, error) {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, tls.VersionTLS13)
	typ := byte(1) // server
	if client {
		typ = 2
	}
	b = append(b, typ)
	b = binary.BigEndian.AppendUint16(b, tls.TLS_AES_128_GCM_SHA256)
	b = binary.BigEndian.AppendUint64(b, uint64(now.Unix()))
	b = append(b, byte(len(psk)))
	b = append(b, psk...)
	b = appendUint24(b, 0) // extra
	b = append(b, 0, 0)    // no extended master secret (TLS 1.2 only), no early data
	// certificate_list: one entry, the certificate and no extensions.
	b = appendUint24(b, 3+len(cert)+2)
	b = appendUint24(b, len(cert))
	b = append(b, cert...)
	b = append(b, 0, 0)
	b = appendUint24(b, 0) // verified_chains
	if client {
		b = binary.BigEndian.AppendUint64(b, uint64(now.Add(pskLifetime).Unix())) // use_by
		b = binary.BigEndian.AppendUint32(b, 0)                                   // age_add
	}
	return tls.ParseSessionState(b)
}

func appendUint24(b []byte, n int) []byte {
	return append(b, byte(n>>16), byte(n>>8), byte(n))
}

// oneSession is the host's ClientSessionCache: it offers its session for
// the plugin's connection, and keeps nothing the handshake gives back.
type oneSession struct{ s *tls.ClientSessionState }

func (o oneSession) Get(string) (*tls.ClientSessionState, bool) { return o.s, o.s != nil }
func (oneSession) Put(string, *tls.ClientSessionState)          {}

// hostSession is the session the host offers (see oneSession), or nil if
// it cannot be made: the handshake then uses the certificates.
func (m *MTLS) hostSession() *tls.ClientSessionState {
	scalar, err := m.plugKey.Bytes()
	if err != nil {
		return nil
	}
	psk, err := resumptionPSK(scalar)
	if err != nil {
		return nil
	}
	state, err := sessionState(psk, m.plugCert, true, time.Now())
	if err != nil {
		return nil
	}
	cs, err := tls.NewResumptionState(pskIdentity, state)
	if err != nil {
		return nil
	}
	return cs
}

// unwrapSession is the plugin's Config.UnwrapSession: the host's session,
// under pskIdentity, and no other (nil: a full handshake). Its peer
// certificate is the plugin's own: a resumed handshake proves the key, not
// a certificate (see PluginConfig's VerifyConnection).
func (m *MTLS) unwrapSession(identity []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	if !bytes.Equal(identity, pskIdentity) {
		return nil, nil
	}
	scalar := m.plugScalar
	if scalar == nil { // a host-side MTLS, in tests
		var err error
		if scalar, err = m.plugKey.Bytes(); err != nil {
			return nil, nil
		}
	}
	psk, err := resumptionPSK(scalar)
	if err != nil {
		return nil, nil
	}
	state, err := sessionState(psk, m.plugCert, false, time.Now())
	if err != nil {
		return nil, nil
	}
	return state, nil
}
