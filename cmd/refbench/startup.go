package main

import (
	"fmt"
	"os"
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

// startupSides are the columns of the start-up table: refplug with its
// defaults (its own mutual TLS) and without TLS, go-plugin net/rpc glue
// with AutoMTLS and without.
var startupSides = []struct {
	name string
	tls  bool
	life func(tls bool) ([]time.Time, error)
}{
	{"refplug, defaults (its mTLS)", true, refplugLife},
	{"refplug, WithAutoMTLS(false)", false, refplugLife},
	{"go-plugin net/rpc, AutoMTLS", true, goPluginLife},
	{"go-plugin net/rpc, no TLS", false, goPluginLife},
}

// startupTarget is the goal for refplug's whole start-up with its defaults
// as a ratio to go-plugin's with AutoMTLS.
const startupTarget = 0.3

// startupParts times each part of a plugin's life, for each of
// startupSides, alternating, and reports the medians: where start-up time
// goes, and refplug's ratio to go-plugin with TLS on both.
func startupParts(rounds int) (string, error) {
	parts := make([][][]time.Duration, len(startupSides))
	totals := make([][]time.Duration, len(startupSides))
	for s := range parts {
		parts[s] = make([][]time.Duration, len(startupPartNames))
	}
	for r := range rounds {
		for k := range startupSides {
			s := (k + r) % len(startupSides)
			marks, err := startupSides[s].life(startupSides[s].tls)
			if err != nil {
				return "", fmt.Errorf("start-up parts (%s): %w", startupSides[s].name, err)
			}
			for i := range startupPartNames {
				parts[s][i] = append(parts[s][i], marks[i+1].Sub(marks[i]))
			}
			totals[s] = append(totals[s], marks[len(marks)-1].Sub(marks[0]))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| start-up by part (median of %d) |", rounds)
	for _, side := range startupSides {
		fmt.Fprintf(&b, " %s µs |", side.name)
	}
	fmt.Fprintf(&b, "\n|---|%s\n", strings.Repeat("---:|", len(startupSides)))
	for i, name := range startupPartNames {
		fmt.Fprintf(&b, "| %s |", name)
		for s := range startupSides {
			fmt.Fprintf(&b, " %s |", us(median(parts[s][i])))
		}
		b.WriteString("\n")
	}
	b.WriteString("| **whole life** |")
	for s := range startupSides {
		fmt.Fprintf(&b, " **%s** |", us(median(totals[s])))
	}
	ratio := float64(median(totals[0])) / float64(median(totals[2]))
	fmt.Fprintf(&b, "\n\nrefplug's whole start-up with its defaults ÷ go-plugin's with AutoMTLS: %.2f (target ≤ %.1f%s); without TLS on either side: %.2f\n",
		ratio, startupTarget, verdict(ratio <= startupTarget), float64(median(totals[1]))/float64(median(totals[3])))
	return b.String(), nil
}

// refplugLife loads, dispenses, calls and closes a refplug plugin, and
// returns the time at each step's start and the last one's end.
func refplugLife(tls bool) ([]time.Time, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	marks := []time.Time{time.Now()}
	c, err := host.Load(exe, host.WithArgs("plugin", "refplug"), host.WithLogger(quietLogger("refplug")), host.WithAutoMTLS(tls))
	if err != nil {
		return nil, err
	}
	if c.Transport() != "socketpair" {
		c.Close()
		return nil, fmt.Errorf("the plugin runs on %s, not its socket pair", c.Transport())
	}
	marks = append(marks, time.Now())
	b, err := host.Dispense[bench.Bench](c, "bench")
	marks = append(marks, time.Now())
	if err == nil {
		_, err = b.Plain(1, 2)
	}
	marks = append(marks, time.Now())
	c.Close()
	return append(marks, time.Now()), err
}

// goPluginLife is refplugLife for go-plugin net/rpc glue.
func goPluginLife(tls bool) ([]time.Time, error) {
	marks := []time.Time{time.Now()}
	gc, err := newGoPlugin("netrpc", bench.Handshake, &bench.NetRPCPlugin{}, goplugin.ProtocolNetRPC, tls)
	if err != nil {
		return nil, err
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
	return append(marks, time.Now()), err
}
