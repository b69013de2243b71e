package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/refplug/refplug/internal/bench"
	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/refbroker"
)

// The floor: round trips between this process and a child on a unix
// socket, from a bare ping-pong up to net/rpc and refplug, to show where a
// call's time goes (BENCHMARKS.md, Where the time goes). `refbench -floor`.

// floorModes are the ping-pongs measured, in table order.
var floorModes = []struct{ name, what string }{
	{"raw", "one goroutine each side, no hand-off"},
	{"serve-handoff", "one hand-off: the serving side answers from a new goroutine (`go` per message)"},
	{"caller-handoff", "one hand-off: a reader goroutine passes each reply to the waiting caller"},
	{"caller-spins", "a reader goroutine passes each reply to the caller, which spins for it"},
	{"both-handoffs", "both hand-offs"},
	{"netrpc-socket", "net/rpc over the socket (both hand-offs)"},
	{"netrpc-yamux", "net/rpc over a yamux stream on the socket (go-plugin's transport)"},
	{"refplug-socket", "refbroker over the socket (refplug's default)"},
	{"refplug-nospin", "refbroker over the socket, reads not spinning (`Options.NoSpin` both sides)"},
	{"refplug-yamux", "refbroker over a yamux stream (host.WithMuxBroker)"},
}

// overYamux reports whether mode runs on a yamux stream over the socket.
func overYamux(mode string) bool { return mode == "netrpc-yamux" || mode == "refplug-yamux" }

// floorMsg is the size of the bare ping-pongs' messages.
const floorMsg = 32

// Floor is the net/rpc service of the floor's child.
type Floor struct{}

// Plain adds.
func (Floor) Plain(args [2]int, sum *int) error { *sum = args[0] + args[1]; return nil }

// runFloor measures every floor mode, rounds times each, alternating.
func runFloor(out, progress io.Writer, rounds int, round time.Duration) error {
	dir, err := os.MkdirTemp("", "refbench-floor")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start, counted := readCPUTimes()
	results := make([][]time.Duration, len(floorModes))
	for r := range rounds {
		fmt.Fprintf(progress, "floor: round %d of %d…\n", r+1, rounds)
		for i, m := range floorModes {
			d, err := floorRound(dir, m.name, round)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			results[i] = append(results[i], d)
		}
	}
	fmt.Fprintf(out, "Machine: %s.\n\n| ping-pong, this process ↔ a child on a unix socket | µs per round trip (median of %d) |\n|---|---:|\n", machineName(), rounds)
	for i, m := range floorModes {
		r := result{perOp: results[i]}
		fmt.Fprintf(out, "| %s | %s |\n", m.what, us(r.median()))
	}
	if note := stealNote("the ping-pongs", start, counted); note != "" {
		fmt.Fprintf(out, "\n%s", note)
	}
	return nil
}

// buffersLikePlugins gives a floor's socket the buffers the socket pair
// of a plugin asks for (gp.SocketBuffer), so that the floors measure the
// same kind of socket refplug's calls travel on: with the kernel's
// defaults the bulk floors are slower (a 1 MiB echo ~270 µs against ~200
// here).
func buffersLikePlugins(conn net.Conn) {
	if u, ok := conn.(*net.UnixConn); ok {
		_ = u.SetWriteBuffer(gp.SocketBuffer)
		_ = u.SetReadBuffer(gp.SocketBuffer)
	}
}

// startFloorChild starts a child serving mode and returns the connection
// to it; stop ends both.
func startFloorChild(dir, mode string) (conn net.Conn, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(dir, mode)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	cmd := exec.Command(exe, "floor-child", sock, mode)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	if conn, err = l.Accept(); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, err
	}
	buffersLikePlugins(conn)
	return conn, func() { conn.Close(); cmd.Process.Kill(); cmd.Wait() }, nil
}

// floorRound starts a child for mode, ping-pongs for about d, and returns
// the time per round trip.
func floorRound(dir, mode string, d time.Duration) (time.Duration, error) {
	conn, stop, err := startFloorChild(dir, mode)
	if err != nil {
		return 0, err
	}
	defer stop()
	var stream io.ReadWriteCloser = conn
	if overYamux(mode) {
		sess, err := yamux.Client(conn, nil)
		if err != nil {
			return 0, err
		}
		defer sess.Close()
		if stream, err = sess.Open(); err != nil {
			return 0, err
		}
	}
	op, err := floorCaller(mode, stream)
	if err != nil {
		return 0, err
	}
	return timeOp(op, 200, d)
}

// floorCaller returns one round trip of mode over stream.
func floorCaller(mode string, stream io.ReadWriteCloser) (func() error, error) {
	switch mode {
	case "raw", "serve-handoff":
		buf := make([]byte, floorMsg)
		return func() error {
			if _, err := stream.Write(buf); err != nil {
				return err
			}
			_, err := io.ReadFull(stream, buf)
			return err
		}, nil
	case "caller-handoff", "both-handoffs", "caller-spins":
		replies := make(chan error, 1) // room for the final error, once the stream closes
		spin := mode == "caller-spins"
		go func() {
			for {
				buf := make([]byte, floorMsg)
				_, err := io.ReadFull(stream, buf)
				replies <- err
				if err != nil {
					return
				}
			}
		}()
		buf := make([]byte, floorMsg)
		return func() error {
			if _, err := stream.Write(buf); err != nil {
				return err
			}
			for start := time.Now(); spin && len(replies) == 0 && time.Since(start) < 50*time.Microsecond; {
			}
			return <-replies
		}, nil
	case "netrpc-socket", "netrpc-yamux":
		c := rpc.NewClient(stream)
		return func() error { var sum int; return c.Call("Floor.Plain", [2]int{1, 2}, &sum) }, nil
	case "refplug-socket", "refplug-yamux", "refplug-nospin":
		c := refbroker.NewConn(stream, refbroker.Options{NoSpin: mode == "refplug-nospin"})
		b, err := refbroker.Dispense[bench.Bench](c, "bench")
		if err != nil {
			return nil, err
		}
		return func() error { _, err := b.Plain(1, 2); return err }, nil
	}
	return nil, fmt.Errorf("unknown floor mode %q", mode)
}

// floorChild is the child's side of mode: it serves until the parent hangs
// up.
func floorChild(sock, mode string) error {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	buffersLikePlugins(conn)
	var stream io.ReadWriteCloser = conn
	if overYamux(mode) {
		sess, err := yamux.Server(conn, nil)
		if err != nil {
			return err
		}
		if stream, err = sess.Accept(); err != nil {
			return err
		}
	}
	switch mode {
	case "raw", "caller-handoff", "caller-spins":
		buf := make([]byte, floorMsg)
		for {
			if _, err := io.ReadFull(stream, buf); err != nil {
				return nil
			}
			if _, err := stream.Write(buf); err != nil {
				return nil
			}
		}
	case "serve-handoff", "both-handoffs":
		for {
			buf := make([]byte, floorMsg)
			if _, err := io.ReadFull(stream, buf); err != nil {
				return nil
			}
			go stream.Write(buf)
		}
	case "netrpc-socket", "netrpc-yamux":
		s := rpc.NewServer()
		if err := s.Register(Floor{}); err != nil {
			return err
		}
		s.ServeConn(stream)
		return nil
	case "refplug-socket", "refplug-yamux", "refplug-nospin":
		c := refbroker.NewConn(stream, refbroker.Options{Roots: map[string]any{"bench": &bench.Impl{}}, NoSpin: mode == "refplug-nospin"})
		<-c.Done()
		return nil
	case "echo-mib", "echo-mib-fresh":
		buf := make([]byte, bulkMsg)
		for {
			if mode == "echo-mib-fresh" {
				buf = make([]byte, bulkMsg)
			}
			if _, err := io.ReadFull(stream, buf); err != nil {
				return nil
			}
			if _, err := stream.Write(buf); err != nil {
				return nil
			}
		}
	case "sink":
		n, err := io.CopyBuffer(io.Discard, onlyReader{stream}, make([]byte, bulkMsg))
		if err != nil {
			return err
		}
		_, err = stream.Write(binary.AppendUvarint(nil, uint64(n)))
		return err
	}
	return fmt.Errorf("unknown floor mode %q", mode)
}

// onlyReader hides all but Read, so that io.CopyBuffer uses its buffer.
type onlyReader struct{ io.Reader }

// The bulk floors: what the socket between this process and a child
// allows for the bulk workloads.

// bulkMsg is the size of one bulk message, and of the buffers.
const bulkMsg = 1 << 20

// echoFloor returns the time a child takes to echo bulkMsg bytes back
// over the socket, from a round of about d. With fresh, each side reads
// into a newly made buffer each time, as a call's argument (in the
// plugin) and result (in the host) must be: then the floor includes what
// Go's allocator and collector charge for that memory.
func echoFloor(dir string, d time.Duration, fresh bool) (time.Duration, error) {
	mode := "echo-mib"
	if fresh {
		mode = "echo-mib-fresh"
	}
	conn, stop, err := startFloorChild(dir, mode)
	if err != nil {
		return 0, err
	}
	defer stop()
	buf := make([]byte, bulkMsg)
	op := func() error {
		if _, err := conn.Write(buf); err != nil {
			return err
		}
		in := buf
		if fresh {
			in = make([]byte, bulkMsg)
		}
		_, err := io.ReadFull(conn, in)
		return err
	}
	return timeOp(op, 20, d)
}

// streamFloor returns the time to move total bytes to a child over the
// socket in writes of bulkMsg bytes, until the child has read them all.
func streamFloor(dir string, total int64) (time.Duration, error) {
	conn, stop, err := startFloorChild(dir, "sink")
	if err != nil {
		return 0, err
	}
	defer stop()
	buf := make([]byte, bulkMsg)
	start := time.Now()
	for sent := int64(0); sent < total; sent += bulkMsg {
		if _, err := conn.Write(buf[:min(bulkMsg, total-sent)]); err != nil {
			return 0, err
		}
	}
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		return 0, err
	}
	got, err := binary.ReadUvarint(bufio.NewReader(conn))
	if err != nil {
		return 0, err
	}
	if int64(got) != total {
		return 0, fmt.Errorf("the sink read %d bytes of %d", got, total)
	}
	return time.Since(start), nil
}
