package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/bench"
)

// refplug against the machine: a plain call against a bare ping-pong, and
// bulk data against the socket between two processes moving the same
// bytes, alternating in each round.

// The goals of the table against the machine.
const (
	callTarget   = 1.2 // plain call: at most this times a bare ping-pong
	echoTarget   = 1.5 // 1 MiB in and out: at most this times the socket's echo
	streamTarget = 0.5 // io.Copy through a passed reader or writer: at least this share of the socket's bandwidth
)

// reuseWriter copies what it is given into buf, from the start each time
// n is reset, counting it.
type reuseWriter struct {
	buf []byte
	n   int
}

func (w *reuseWriter) Write(b []byte) (int, error) {
	if w.n+len(b) > len(w.buf) {
		return 0, fmt.Errorf("reuseWriter: %d bytes past its %d", w.n+len(b), len(w.buf))
	}
	w.n += copy(w.buf[w.n:], b)
	return len(b), nil
}

// countingWriter discards what it is given, counting it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(b []byte) (int, error) { w.n += int64(len(b)); return len(b), nil }

// measureMachine measures, rounds times each, alternating: a plain call
// against a bare 32-byte ping-pong with a child, 1 MiB in and out through
// refplug against a socket echo of 1 MiB, and total bytes through io.Copy
// from a host io.Reader and into a host io.Writer against the socket
// streaming the same bytes.
func measureMachine(c *host.Client, b bench.Bench, rounds int, round time.Duration, total int64) (string, error) {
	streams, err := host.Dispense[bench.Streams](c, "streams")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "refbench-bulk")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	mib := make([]byte, bulkMsg)
	echo := func() error {
		out, err := b.Bytes(mib)
		if err == nil && len(out) != len(mib) {
			err = fmt.Errorf("b.Bytes returned %d bytes", len(out))
		}
		return err
	}
	// The same megabyte in and out through a reader and a writer the
	// host passes (the plugin io.Copies one to the other, which the host
	// makes at home), into a buffer the host reuses, as the floor's echo
	// reads into one.
	src, dst := bytes.NewReader(mib), &reuseWriter{buf: make([]byte, bulkMsg)}
	streamEcho := func() error {
		src.Reset(mib)
		dst.n = 0
		n, err := streams.Echo(dst, src)
		if err == nil && (n != bulkMsg || dst.n != bulkMsg) {
			err = fmt.Errorf("streams.Echo copied %d bytes (the host got %d) of %d", n, dst.n, bulkMsg)
		}
		return err
	}
	// The same megabyte in and out through a method shaped as a read: the
	// host's buffer goes to the plugin and comes back filled, into itself.
	readBack := func() error {
		n, err := streams.ReadBack(mib)
		if err == nil && n != len(mib) {
			err = fmt.Errorf("streams.ReadBack filled %d bytes of %d", n, len(mib))
		}
		return err
	}
	drain := func() (time.Duration, error) {
		start := time.Now()
		n, err := streams.Drain(io.LimitReader(bench.Zeros{}, total))
		if err == nil && n != total {
			err = fmt.Errorf("streams.Drain read %d bytes of %d", n, total)
		}
		return time.Since(start), err
	}
	pour := func() (time.Duration, error) {
		w := &countingWriter{}
		start := time.Now()
		n, err := streams.Pour(w, total)
		if err == nil && (n != total || w.n != total) {
			err = fmt.Errorf("streams.Pour wrote %d bytes (the host got %d) of %d", n, w.n, total)
		}
		return time.Since(start), err
	}
	plain := func() error {
		n, err := b.Plain(1, 2)
		if err == nil && n != 3 {
			err = fmt.Errorf("b.Plain(1, 2) = %d", n)
		}
		return err
	}
	var calls, servingCalls, pings, echoes, readBacks, streamEchoes, floors, freshFloors, drains, pours, streamFloors []time.Duration
	// The plain calls first, from a host the plugin holds nothing of.
	for range rounds {
		d, err := floorRound(dir, "raw", round)
		if err != nil {
			return "", fmt.Errorf("ping-pong: %w", err)
		}
		pings = append(pings, d)
		if d, err = timeOp(plain, 5, round); err != nil {
			return "", fmt.Errorf("plain call: %w", err)
		}
		calls = append(calls, d)
	}
	// The same plain call from a host that serves something: the plugin
	// holds an object of the host's (as a plugin given its host's API
	// does), so it may call the host at any time. Its callers read their
	// own returns too, once calls come back without callbacks
	// (callerread.go).
	if err := b.Hold([]bench.Item{&item{id: 1}}); err != nil {
		return "", fmt.Errorf("b.Hold: %w", err)
	}
	for range rounds {
		d, err := timeOp(plain, 5, round)
		if err != nil {
			return "", fmt.Errorf("plain call from a serving host: %w", err)
		}
		servingCalls = append(servingCalls, d)
	}
	if err := b.Drop(); err != nil {
		return "", fmt.Errorf("b.Drop: %w", err)
	}
	for range rounds {
		d, err := echoFloor(dir, round, false)
		if err != nil {
			return "", fmt.Errorf("socket echo: %w", err)
		}
		floors = append(floors, d)
		if d, err = echoFloor(dir, round, true); err != nil {
			return "", fmt.Errorf("socket echo into fresh buffers: %w", err)
		}
		freshFloors = append(freshFloors, d)
		r, err := timeOp(echo, 5, round)
		if err != nil {
			return "", fmt.Errorf("1 MiB in and out: %w", err)
		}
		echoes = append(echoes, r)
		if r, err = timeOp(readBack, 5, round); err != nil {
			return "", fmt.Errorf("1 MiB in and out through a read: %w", err)
		}
		readBacks = append(readBacks, r)
		if r, err = timeOp(streamEcho, 5, round); err != nil {
			return "", fmt.Errorf("1 MiB in and out through streams: %w", err)
		}
		streamEchoes = append(streamEchoes, r)
		if d, err = streamFloor(dir, total); err != nil {
			return "", fmt.Errorf("socket stream: %w", err)
		}
		streamFloors = append(streamFloors, d)
		if d, err = drain(); err != nil {
			return "", fmt.Errorf("streams.Drain: %w", err)
		}
		drains = append(drains, d)
		if d, err = pour(); err != nil {
			return "", fmt.Errorf("streams.Pour: %w", err)
		}
		pours = append(pours, d)
	}
	rate := func(d time.Duration) string {
		return fmt.Sprintf("%.0f MiB/s", float64(total)/(1<<20)/d.Seconds())
	}
	var s strings.Builder
	fmt.Fprintf(&s, "| against the machine (median of %d) | refplug | the socket (floor) | refplug ÷ floor | target |\n|---|---:|---:|---:|---|\n", rounds)
	call, ping := median(calls), median(pings)
	fmt.Fprintf(&s, "| plain call (µs; floor: a 32-byte ping-pong, one goroutine a side) | %s | %s | %.2f | ≤ %.1f×%s |\n", us(call), us(ping), float64(call)/float64(ping), callTarget, verdict(float64(call)/float64(ping) <= callTarget))
	sc := median(servingCalls)
	fmt.Fprintf(&s, "| the same plain call while the plugin holds an object of the host's (a host that serves something; its callers read their own returns while no callbacks come) | %s | %s | %.2f | (for comparison) |\n", us(sc), us(ping), float64(sc)/float64(ping))
	e, f := median(echoes), median(floors)
	ratio := float64(e) / float64(f)
	fmt.Fprintf(&s, "| 1 MiB in and out (µs; floor: a child echoes 1 MiB) | %s | %s | %.2f | ≤ %.1f×%s |\n", us(e), us(f), ratio, echoTarget, verdict(ratio <= echoTarget))
	ff := median(freshFloors)
	fmt.Fprintf(&s, "| the same, against an echo into a fresh 1 MiB on each side, as a call's argument and result are (µs) | %s | %s | %.2f | (what Go's allocation costs) |\n", us(e), us(ff), float64(e)/float64(ff))
	rb := median(readBacks)
	fmt.Fprintf(&s, "| 1 MiB in and out through a method shaped as a read, `ReadBack(p []byte) (int, error)`: the host's buffer sent and filled (µs; floor: the echo) | %s | %s | %.2f | ≤ %.1f×%s |\n", us(rb), us(f), float64(rb)/float64(f), echoTarget, verdict(float64(rb)/float64(f) <= echoTarget))
	se := median(streamEchoes)
	fmt.Fprintf(&s, "| 1 MiB in and out through an io.Reader and an io.Writer the host passes, the plugin io.Copying one to the other: the host makes the copy, the bytes stay in it (µs; floor: the echo) | %s | %s | %.2f | ≤ %.1f×%s |\n", us(se), us(f), float64(se)/float64(f), echoTarget, verdict(float64(se)/float64(f) <= echoTarget))
	sf := median(streamFloors)
	for _, row := range []struct {
		name string
		d    time.Duration
	}{
		{fmt.Sprintf("io.Copy from a host io.Reader, %d MiB", total>>20), median(drains)},
		{fmt.Sprintf("io.Copy into a host io.Writer, %d MiB", total>>20), median(pours)},
	} {
		share := float64(sf) / float64(row.d)
		fmt.Fprintf(&s, "| %s | %s | %s | %.2f | ≥ %.1f%s |\n", row.name, rate(row.d), rate(sf), share, streamTarget, verdict(share >= streamTarget))
	}
	return s.String(), nil
}

// timeOp runs op warm times, then for about d, and returns the time per
// run of the latter.
func timeOp(op func() error, warm int, d time.Duration) (time.Duration, error) {
	for range warm {
		if err := op(); err != nil {
			return 0, err
		}
	}
	n, start := 0, time.Now()
	for time.Since(start) < d {
		if err := op(); err != nil {
			return 0, err
		}
		n++
	}
	return time.Since(start) / time.Duration(n), nil
}
