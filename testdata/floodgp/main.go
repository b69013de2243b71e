// Command floodgp is a hostile test plugin: it starts on its socket pair
// as a refplug plugin does and serves contract.NewService as "svc" there,
// but on go-plugin's connection, once the host has made it (TLS and all),
// it writes yamux frames of its own, as $FLOODGP_MODE says:
//
//   - streams: opens 300 streams, each sending the same broker id and
//     200 KiB (go-plugin's MuxBroker keeps all but the first open);
//   - pings: asks for 1,000 pings (yamux answers each from a goroutine);
//   - frame: opens a stream and sends 1 MiB on it at once, past yamux's
//     256 KiB window;
//   - message: once the host has opened go-plugin's control stream,
//     starts a net/rpc answer of almost 8 GiB on it (gob holds what
//     arrives of a message until it is whole) and sends 200 KiB of it.
//
// It never reads what the host sends, beyond draining it. Its socket goes
// in the directory $FLOODGP_DIR.
package main

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/refplug/refplug/testdata/hostile"
)

func main() {
	dir := os.Getenv("FLOODGP_DIR")
	slot, plain, config, err := hostile.Socket()
	if err != nil {
		fail(err)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "go-plugin.sock"))
	if err != nil {
		fail(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if config != nil {
				tc := tls.Server(c, config)
				if tc.Handshake() != nil {
					c.Close()
					continue
				}
				c = tc
			}
			control := make(chan struct{})
			go drain(c, control)
			go flood(c, os.Getenv("FLOODGP_MODE"), control)
		}
	}()
	if err := hostile.ServeEarly(slot, plain, l.Addr()); err != nil {
		fail(err)
	}
}

// yamux's frame header: version 0, type, flags, stream id, length.
func frame(typ byte, flags uint16, id, length uint32) []byte {
	h := make([]byte, 12)
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], id)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

const (
	data, windowUpdate, ping = 0, 1, 2
	syn                      = 1
)

// drain reads what the host sends on c, and closes control once the host
// has opened its first stream, go-plugin's control stream.
func drain(c net.Conn, control chan struct{}) {
	h := make([]byte, 12)
	for {
		if _, err := io.ReadFull(c, h); err != nil {
			return
		}
		if h[1] == data {
			if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(h[8:]))); err != nil {
				return
			}
		}
		if binary.BigEndian.Uint32(h[4:]) == 1 && binary.BigEndian.Uint16(h[2:])&syn != 0 {
			close(control)
		}
	}
}

// flood writes mode's frames on c until c fails.
func flood(c net.Conn, mode string, control <-chan struct{}) {
	switch mode {
	case "streams":
		payload := make([]byte, 200<<10)
		binary.LittleEndian.PutUint32(payload, 7) // MuxBroker's stream id
		for i := range uint32(300) {
			id := 2 + 2*i // the plugin, yamux's server, opens even ids
			if _, err := c.Write(append(frame(windowUpdate, syn, id, 0), frame(data, 0, id, uint32(len(payload)))...)); err != nil {
				return
			}
			if _, err := c.Write(payload); err != nil {
				return
			}
		}
	case "pings":
		for i := range uint32(1000) {
			if _, err := c.Write(frame(ping, syn, 0, i)); err != nil {
				return
			}
		}
	case "frame":
		c.Write(frame(windowUpdate, syn, 2, 0))
		c.Write(frame(data, 0, 2, 1<<20))
		c.Write(make([]byte, 1<<20))
	case "message":
		<-control
		answer := make([]byte, 200<<10)
		copy(answer, []byte{0xFB, 0x01, 0xFF, 0xFF, 0xFF, 0xFF}) // gob's unsigned integer: 8 GiB - 1
		c.Write(append(frame(data, 0, 1, uint32(len(answer))), answer...))
	}
	select {} // hold the connection open
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floodgp:", err)
	os.Exit(1)
}
