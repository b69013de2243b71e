package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/bench"
)

// startupPartNames are the parts of a plugin's life startupParts times.
var startupPartNames = []string{
	"start + handshake (host.Load; go-plugin Client())",
	"Dispense",
	"first call",
	"Close (go-plugin: Kill)",
}

// startupParts times each part of a plugin's life, refplug's and go-plugin
// net/rpc glue's, alternating, and reports the medians: where start-up
// time goes.
func startupParts(rounds int) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	parts := [2][][]time.Duration{}
	for s := range parts {
		parts[s] = make([][]time.Duration, len(startupPartNames))
	}
	lap := func(s int, marks []time.Time) {
		for i := range startupPartNames {
			parts[s][i] = append(parts[s][i], marks[i+1].Sub(marks[i]))
		}
	}
	for range rounds {
		marks := []time.Time{time.Now()}
		c, err := host.Load(exe, host.WithArgs("plugin", "refplug"), host.WithLogger(quietLogger("refplug")), host.WithAutoMTLS(autoMTLS))
		if err != nil {
			return "", fmt.Errorf("start-up parts (refplug): %w", err)
		}
		marks = append(marks, time.Now())
		b, err := host.Dispense[bench.Bench](c, "bench")
		marks = append(marks, time.Now())
		if err == nil {
			_, err = b.Plain(1, 2)
		}
		marks = append(marks, time.Now())
		c.Close()
		marks = append(marks, time.Now())
		if err != nil {
			return "", fmt.Errorf("start-up parts (refplug): %w", err)
		}
		lap(0, marks)

		marks = []time.Time{time.Now()}
		gc, err := newGoPlugin("netrpc", bench.Handshake, &bench.NetRPCPlugin{}, goplugin.ProtocolNetRPC)
		if err != nil {
			return "", err
		}
		rc, err := gc.Client()
		marks = append(marks, time.Now())
		var raw any
		if err == nil {
			raw, err = rc.Dispense("bench")
		}
		marks = append(marks, time.Now())
		if err == nil {
			_, err = raw.(bench.Bench).Plain(1, 2)
		}
		marks = append(marks, time.Now())
		gc.Kill()
		marks = append(marks, time.Now())
		if err != nil {
			return "", fmt.Errorf("start-up parts (net/rpc): %w", err)
		}
		lap(1, marks)
	}
	median := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| start-up by part (median of %d) | refplug µs | go-plugin net/rpc µs |\n|---|---:|---:|\n", rounds)
	for i, name := range startupPartNames {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, us(median(parts[0][i])), us(median(parts[1][i])))
	}
	return b.String(), nil
}
