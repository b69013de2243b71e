package gp

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The guard's rules (guard.go): what it checks in each frame of yamux's
// the plugin sends, and what it notes of the host's to know which
// streams are open.

// GuardStreams is how many streams a plugin may have opened on go-plugin's
// connection at once.
const GuardStreams = 16

// guardPingBurst is how many pings a plugin may ask for at once; after a
// burst, it may ask for one a second.
const guardPingBurst = 8

// yamux's frame: a 12-byte header (version, type, flags, stream id,
// length), then, for a data frame, length bytes.
const (
	yamuxHeaderSize = 12
	yamuxWindow     = 256 << 10 // the most a peer may send on a stream unread (go-plugin's yamux defaults)

	yamuxData         = 0
	yamuxWindowUpdate = 1
	yamuxPing         = 2
	yamuxGoAway       = 3

	yamuxSYN = 1
	yamuxFIN = 4
	yamuxRST = 8
)

// A stream's half-closes, as the guard has seen them.
const (
	finHost   uint8 = 1
	finPlugin uint8 = 2
)

// admit checks a frame's header h and notes what it does to the streams;
// it reports whether the frame goes on to the other side. A frame from
// the plugin that breaks a rule is an error.
func (g *Guard) admit(h []byte, fromPlugin bool) (bool, error) {
	version, typ := h[0], h[1]
	flags := binary.BigEndian.Uint16(h[2:4])
	id := binary.BigEndian.Uint32(h[4:8])
	length := binary.BigEndian.Uint32(h[8:12])
	if !fromPlugin {
		g.mu.Lock()
		defer g.mu.Unlock()
		if typ == yamuxData || typ == yamuxWindowUpdate {
			g.note(id, flags, false)
		}
		return true, nil
	}
	if version != 0 {
		return false, fmt.Errorf("a frame of yamux version %d (yamux's is 0)", version)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch typ {
	case yamuxData, yamuxWindowUpdate:
		if typ == yamuxData && length > yamuxWindow {
			return false, fmt.Errorf("a data frame of %d bytes on stream %d, past yamux's window of %d", length, id, yamuxWindow)
		}
		if flags&yamuxSYN != 0 {
			if g.streams[id] != nil {
				return false, fmt.Errorf("stream %d opened again while open", id)
			}
			if id == 0 || id%2 != 0 { // the host, yamux's client, opens the odd ones
				return false, fmt.Errorf("stream %d opened with an id that is not the plugin's to use", id)
			}
			if g.opened >= GuardStreams {
				return false, fmt.Errorf("more than %d streams opened and left open", GuardStreams)
			}
			g.opened++
			g.streams[id] = &guardStream{}
		}
		if g.streams[id] == nil {
			return false, nil // as yamux would: the stream is gone, or never was
		}
		g.note(id, flags, true)
		return true, nil
	case yamuxPing:
		if flags&yamuxSYN != 0 {
			now := time.Now()
			g.pings = min(guardPingBurst, g.pings+now.Sub(g.pingedAt).Seconds())
			g.pingedAt = now
			if g.pings < 1 {
				return false, fmt.Errorf("more than %d pings asked for at once", guardPingBurst)
			}
			g.pings--
		}
		return true, nil
	case yamuxGoAway:
		return true, nil
	}
	return false, fmt.Errorf("a frame of unknown type %d", typ)
}

// note records a stream frame's half-close or reset (under g.mu). A
// stream ends when reset, or when both sides have closed it, as in yamux.
func (g *Guard) note(id uint32, flags uint16, fromPlugin bool) {
	st := g.streams[id]
	if st == nil {
		if fromPlugin || flags&yamuxSYN == 0 {
			return
		}
		st = hostStream(id)
		g.streams[id] = st
	}
	switch {
	case flags&yamuxRST != 0:
	case flags&yamuxFIN != 0:
		if fromPlugin {
			st.fin |= finPlugin
		} else {
			st.fin |= finHost
		}
		if st.fin != finPlugin|finHost {
			return
		}
	default:
		return
	}
	delete(g.streams, id)
	if id%2 == 0 {
		g.opened--
	}
}

// guardStream is an open stream as the guard sees it.
type guardStream struct {
	fin uint8 // which sides have closed it (finHost, finPlugin)
	// gob: what the plugin sends on it is net/rpc's, gob messages, after
	// skip bytes; left of the current message are still to come, or its
	// length is being read (have bytes of it in count).
	gob   bool
	skip  int
	left  uint64
	count [9]byte
	have  int
}

// guardGobMessage is the longest net/rpc message the plugin may send the
// host. What go-plugin's net/rpc carries from a refplug plugin (answers
// to go-plugin's pings, quit and Dispense, and to refplug's calls that
// connect the socket) takes a few hundred bytes; gob itself takes
// messages up to 8 GiB, holding what arrives of one until it is whole.
const guardGobMessage = 1 << 20

// hostStream is a stream the host opens, id. go-plugin opens its control
// stream first, then its stdout and stderr streams (NewRPCClient); every
// later one is a MuxBroker.Dial, whose peer answers with a 4-byte ack.
// All but stdout and stderr then carry net/rpc.
func hostStream(id uint32) *guardStream {
	switch id {
	case 1:
		return &guardStream{gob: true}
	case 3, 5:
		return &guardStream{}
	}
	return &guardStream{gob: true, skip: 4}
}

// scan follows the messages of net/rpc in p, data the plugin sends on
// stream id, and fails one longer than guardGobMessage.
func (g *Guard) scan(id uint32, p []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.streams[id]
	if st == nil || !st.gob {
		return nil
	}
	for len(p) > 0 {
		switch {
		case st.skip > 0:
			n := min(st.skip, len(p))
			st.skip -= n
			p = p[n:]
		case st.left > 0:
			n := min(st.left, uint64(len(p)))
			st.left -= n
			p = p[n:]
		default: // a message's length: gob's unsigned integer
			st.count[st.have] = p[0]
			st.have++
			p = p[1:]
			if st.count[0] < 0x80 { // the value itself
				st.left, st.have = uint64(st.count[0]), 0
				continue
			}
			n := 256 - int(st.count[0]) // then that many bytes, big-endian
			if n > 8 {
				return fmt.Errorf("a net/rpc message on stream %d whose length is not gob's", id)
			}
			if st.have <= n {
				continue
			}
			var v uint64
			for _, b := range st.count[1 : 1+n] {
				v = v<<8 | uint64(b)
			}
			st.have = 0
			if v > guardGobMessage {
				return fmt.Errorf("a net/rpc message of %d bytes on stream %d, past the guard's %d", v, id, guardGobMessage)
			}
			st.left = v
		}
	}
	return nil
}
