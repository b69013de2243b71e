// Command refbench measures refplug against go-plugin glue written by hand
// (net/rpc, the baseline, and gRPC), serving the same interface
// (internal/bench) from the same implementation, alternating them in every
// round of one run; refplug is measured on its socket pair and on a
// go-plugin broker stream. It prints a Markdown table: median µs per
// operation, host-side allocations per operation, and refplug's ratio to
// the baseline.
//
//	go run ./cmd/refbench            # what `make bench` runs
//	go run ./cmd/refbench -rounds 3 -round 100ms
//	go run ./cmd/refbench -floor     # round trips from a bare socket ping-pong to refbroker
//
// The plugins are this same binary, started with the argument "plugin"
// (and, for -floor, "floor-child").
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/bench"
	skew "github.com/refplug/refplug/internal/bench/skew"
	"github.com/refplug/refplug/plugin"
)

func main() {
	if serveChild() {
		return
	}
	cfg := config{}
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds per workload; the median is reported")
	flag.DurationVar(&cfg.round, "round", 300*time.Millisecond, "time each side runs a workload in a round")
	flag.IntVar(&cfg.refs, "refs", 100_000, "live references for the memory and release measurement")
	flag.Int64Var(&cfg.stream, "stream", 256<<20, "bytes moved by each io.Copy row of the bulk table")
	flag.IntVar(&cfg.many, "many", 50, "plugins loaded in parallel for the many-plugins row (0: none)")
	flag.StringVar(&cfg.only, "only", "", "run only the workloads whose name contains this")
	flag.BoolVar(&autoMTLS, "automtls", false, "load the refplug plugins of the workload and many-plugins tables with mutual TLS (host.Load's default); off by default here, since the baselines there run without TLS (the start-up table measures both ways)")
	cpuprofile := flag.String("cpuprofile", "", "write the host's CPU profile to this file")
	startupOnly := flag.Bool("startup", false, "instead of the comparison, time only the parts of a plugin's life (the start-up table), 4×rounds lives a side")
	floor := flag.Bool("floor", false, "instead of the comparison, measure round trips from a bare socket ping-pong up to net/rpc and refbroker (where a call's time goes)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "refbench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if !*floor {
		fmt.Fprintln(os.Stderr, baselineNoise)
	}
	if *startupOnly {
		start, counted := readCPUTimes()
		table, err := startupParts(4 * cfg.rounds)
		if err != nil {
			fmt.Fprintln(os.Stderr, "refbench:", err)
			os.Exit(1)
		}
		fmt.Printf("Machine: %s.\n\n%s", machineName(), table)
		if note := stealNote("the lives", start, counted); note != "" {
			fmt.Printf("\n%s", note)
		}
		return
	}
	if *floor {
		if err := runFloor(os.Stdout, os.Stderr, cfg.rounds, cfg.round); err != nil {
			fmt.Fprintln(os.Stderr, "refbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Stdout, os.Stderr, cfg); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "refbench:", err)
		os.Exit(1)
	}
}

// baselineNoise tells a person watching what go-plugin's own lines in the
// progress are: its net/rpc plugins exit before they answer its Quit, and
// its client logs the broken connection (hclog) and its yamux session the
// failed write (the standard logger, which refbench cannot quiet).
const baselineNoise = `refbench: go-plugin's warnings below ("error closing client during Kill", "plugin failed to exit gracefully", "yamux: Failed to write header") come from its net/rpc baseline plugins, which exit before they answer its Quit: expected, and not refplug's.`

// serveChild runs this process as one of refbench's children, if its
// arguments say it is one ("plugin KIND" or "floor-child SOCKET MODE"), and
// reports whether it was.
func serveChild() bool {
	switch {
	case len(os.Args) == 3 && os.Args[1] == "plugin":
		servePlugin(os.Args[2])
	case len(os.Args) == 4 && os.Args[1] == "floor-child":
		if err := floorChild(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "refbench floor child:", err)
			os.Exit(1)
		}
	default:
		return false
	}
	return true
}

func servePlugin(kind string) {
	if path := os.Getenv("REFBENCH_PLUGIN_CPUPROFILE"); path != "" {
		if f, err := os.Create(path + "." + kind); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	switch kind {
	case "refplug":
		plugin.Serve(map[string]any{"bench": &bench.Impl{}, "streams": bench.StreamsImpl{}})
	case "refplug-skew": // Batch and Record laid out otherwise (a later contract)
		plugin.Serve(map[string]any{"bench": &skew.Impl{}})
	case "netrpc":
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig: bench.Handshake,
			Plugins:         goplugin.PluginSet{"bench": &bench.NetRPCPlugin{Impl: &bench.Impl{}}},
			Logger:          hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, JSONFormat: true}),
		})
	case "grpc":
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig: bench.GRPCHandshake,
			Plugins:         goplugin.PluginSet{"bench": &bench.GRPCPlugin{Impl: &bench.Impl{}}},
			GRPCServer:      goplugin.DefaultGRPCServer,
			Logger:          hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, JSONFormat: true}),
		})
	default:
		fmt.Fprintf(os.Stderr, "refbench: unknown plugin kind %q\n", kind)
		os.Exit(2)
	}
}

type config struct {
	only   string
	rounds int
	round  time.Duration
	refs   int
	many   int   // plugins for the many-plugins row; 0 for none
	stream int64 // bytes each streaming row moves
}

// autoMTLS is the -automtls flag.
var autoMTLS bool

func loadRefplug(opts ...host.Option) (*host.Client, bench.Bench, error) {
	return loadRefplugKind("refplug", opts...)
}

// loadRefplugKind loads this binary as a refplug plugin of the given kind.
func loadRefplugKind(kind string, opts ...host.Option) (*host.Client, bench.Bench, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	opts = append([]host.Option{host.WithArgs("plugin", kind), host.WithLogger(quietLogger(kind)), host.WithAutoMTLS(autoMTLS)}, opts...)
	c, err := host.Load(exe, opts...)
	if err != nil {
		return nil, nil, err
	}
	b, err := host.Dispense[bench.Bench](c, "bench")
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, b, nil
}

func loadNetRPC() (bench.Bench, func(), error) {
	return loadGoPlugin("netrpc", bench.Handshake, &bench.NetRPCPlugin{}, goplugin.ProtocolNetRPC)
}

func loadGRPC() (bench.Bench, func(), error) {
	return loadGoPlugin("grpc", bench.GRPCHandshake, &bench.GRPCPlugin{}, goplugin.ProtocolGRPC)
}

// newGoPlugin returns a go-plugin client, not yet started, for this binary
// serving bench.Bench as kind.
func newGoPlugin(kind string, hs goplugin.HandshakeConfig, p goplugin.Plugin, proto goplugin.Protocol, autoMTLS bool) (*goplugin.Client, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  hs,
		Plugins:          goplugin.PluginSet{"bench": p},
		Cmd:              exec.Command(exe, "plugin", kind),
		AllowedProtocols: []goplugin.Protocol{proto},
		Logger:           quietLogger(kind),
		AutoMTLS:         autoMTLS,
	}), nil
}

func loadGoPlugin(kind string, hs goplugin.HandshakeConfig, p goplugin.Plugin, proto goplugin.Protocol) (bench.Bench, func(), error) {
	c, err := newGoPlugin(kind, hs, p, proto, false)
	if err != nil {
		return nil, nil, err
	}
	rc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, nil, err
	}
	raw, err := rc.Dispense("bench")
	if err != nil {
		c.Kill()
		return nil, nil, err
	}
	return raw.(bench.Bench), c.Kill, nil
}

// quietLogger logs warnings and errors only, named after the side, so a
// warning says whose plugin it is about.
func quietLogger(side string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "refbench." + side, Level: hclog.Warn, Output: os.Stderr})
}

// sides are the ways of serving bench.Bench, in table order; the second is
// the baseline ratios are taken against. The last is refplug on the
// transport the baselines use (a go-plugin broker stream), to show what
// its private socket pair is worth.
var sides = []struct {
	name string
	load func() (bench.Bench, func(), error)
}{
	{"refplug", func() (bench.Bench, func(), error) { return loadRefplugSide() }},
	{"net/rpc", loadNetRPC},
	{"gRPC", loadGRPC},
	{"refplug muxbroker", func() (bench.Bench, func(), error) { return loadRefplugSide(host.WithMuxBroker()) }},
}

func loadRefplugSide(opts ...host.Option) (bench.Bench, func(), error) {
	c, b, err := loadRefplug(opts...)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { c.Close() }, nil
}

func run(out, progress io.Writer, cfg config) error {
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	runStart, runCounted := readCPUTimes()
	client, ref, err := loadRefplug()
	if err != nil {
		return fmt.Errorf("loading the refplug plugin: %w", err)
	}
	defer client.Close()
	impls := []bench.Bench{ref}
	for _, s := range sides[1:] {
		b, closeIt, err := s.load()
		if err != nil {
			return fmt.Errorf("loading the %s plugin: %w", s.name, err)
		}
		defer closeIt()
		impls = append(impls, b)
	}

	ws := slices.DeleteFunc(workloads(), func(w workload) bool { return !strings.Contains(w.name, cfg.only) })
	var skewed bench.Bench
	if slices.ContainsFunc(ws, func(w workload) bool { return w.skewed }) {
		c, b, err := loadRefplugKind("refplug-skew")
		if err != nil {
			return fmt.Errorf("loading the refplug plugin with other layouts: %w", err)
		}
		defer c.Close()
		skewed = b
	}
	results := make([][]result, len(ws))
	for i, w := range ws {
		say("%-40s %d rounds of %v on each side…", w.name, cfg.rounds, cfg.round)
		results[i] = make([]result, len(sides))
		for r := range cfg.rounds {
			for k := range sides { // rotate the order every round
				s := (k + r) % len(sides)
				impl := impls[s]
				if w.skewed && s == 0 {
					impl = skewed
				}
				perOp, allocs, err := measure(impl, w, cfg.round)
				if err != nil {
					return fmt.Errorf("%s: %w", sides[s].name, err)
				}
				results[i][s].perOp = append(results[i][s].perOp, perOp)
				results[i][s].allocs = append(results[i][s].allocs, allocs)
			}
		}
	}

	say("start-up: Load + Dispense + first call + Close, %d rounds…", cfg.rounds)
	startup := make([]result, len(sides))
	for r := range cfg.rounds {
		for k := range sides {
			s := (k + r) % len(sides) // each side first in turn
			side := sides[s]
			start := time.Now()
			b, closeIt, err := side.load()
			if err == nil {
				_, err = b.Plain(1, 2)
				closeIt()
			}
			if err != nil {
				return fmt.Errorf("start-up (%s): %w", side.name, err)
			}
			startup[s].perOp = append(startup[s].perOp, time.Since(start))
		}
	}

	// A life is a few milliseconds, and its time moves with whatever else
	// the machine does: four times the rounds (20 lives a side by default,
	// under a second in all) steady the medians and their ratio.
	say("start-up by part, %d rounds…", 4*cfg.rounds)
	parts, err := startupParts(4 * cfg.rounds)
	if err != nil {
		return err
	}

	say("against the machine: a plain call, 1 MiB in and out, and io.Copy of %d MiB each way, %d rounds…", cfg.stream>>20, cfg.rounds)
	floorsStart, floorsCounted := readCPUTimes()
	bulk, err := measureMachine(client, ref, cfg.rounds, cfg.round, cfg.stream)
	if err != nil {
		return err
	}
	if note := stealNote("these rounds", floorsStart, floorsCounted); note != "" {
		bulk += "\n" + note
	}

	say("%d live references held by the plugin…", cfg.refs)
	refs, err := measureRefs(client, ref, cfg.refs)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "Machine: %s.\n\n| workload |", machineName())
	for _, side := range sides {
		fmt.Fprintf(out, " %s µs/op | allocs/op |", side.name)
	}
	fmt.Fprintf(out, " refplug ÷ net/rpc | target |\n|---|%s---:|---|\n", strings.Repeat("---:|---:|", len(sides)))
	var single []time.Duration
	for i, w := range ws {
		med := make([]time.Duration, len(sides))
		for s := range sides {
			med[s] = results[i][s].median()
		}
		if w.name == "plain call" {
			single = med
		}
		ratio := float64(med[0]) / float64(med[1])
		target := w.target
		if w.goroutines > 1 && single != nil {
			target = fmt.Sprintf("throughput %.1f× one goroutine's (net/rpc %.1f×, gRPC %.1f×)",
				float64(single[0])/float64(med[0]), float64(single[1])/float64(med[1]), float64(single[2])/float64(med[2]))
			if w.goroutines == 8 {
				target += "; goal ≥ 3×" + verdict(float64(single[0])/float64(med[0]) >= 3)
			}
		}
		if w.limit > 0 {
			target += verdict(ratio <= w.limit)
		}
		fmt.Fprintf(out, "| %s |", w.name)
		for s := range sides {
			fmt.Fprintf(out, " %s | %.0f |", us(med[s]), results[i][s].medianAllocs())
		}
		fmt.Fprintf(out, " %.2f | %s |\n", ratio, target)
	}
	fmt.Fprintf(out, "| Load + Dispense + call + Close |")
	for s := range sides {
		fmt.Fprintf(out, " %s | |", us(startup[s].median()))
	}
	fmt.Fprintf(out, " %.2f | |\n", float64(startup[0].median())/float64(startup[1].median()))
	fmt.Fprintf(out, "\n%s\n%s\n%s", parts, bulk, refs)
	if cfg.many > 0 {
		say("%d plugins loaded in parallel, each side…", cfg.many)
		many, err := measureMany(cfg.many)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\n%s", many)
	}
	if note := stealNote("the whole run", runStart, runCounted); note != "" {
		fmt.Fprintf(out, "\n%s", note)
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return " (met)"
	}
	return " (**missed**)"
}

type item struct{ id int }

func (i *item) ID() (int, error) { return i.id, nil }

// measureRefs hands the plugin n host objects, measures the heap each side
// spends per live reference, then has the plugin drop them and times how
// long until the host's export table is back where it was.
func measureRefs(c *host.Client, b bench.Bench, n int) (string, error) {
	items := make([]bench.Item, n)
	for i := range items {
		items[i] = &item{id: i}
	}
	// Earlier workloads' callbacks stay exported until the plugin collects
	// their proxies and the releases arrive: Memory collects, then wait for
	// the releases, so they are not counted as references held here.
	plugBefore, err := b.Memory()
	if err != nil {
		return "", err
	}
	settle := time.Now().Add(10 * time.Second)
	for c.Stats().Exports != 0 {
		if time.Now().After(settle) {
			return "", fmt.Errorf("the host still exports %d earlier callbacks the plugin no longer holds", c.Stats().Exports)
		}
		time.Sleep(time.Millisecond)
	}
	base := 0
	hostBefore := heap()
	const chunk = 10_000
	for i := 0; i < n; i += chunk {
		if err := b.Hold(items[i:min(i+chunk, n)]); err != nil {
			return "", fmt.Errorf("b.Hold: %w", err)
		}
	}
	hostAfter := heap()
	plugAfter, err := b.Memory()
	if err != nil {
		return "", err
	}
	if plugAfter.Held != n || c.Stats().Exports != base+n {
		return "", fmt.Errorf("after Hold: the plugin holds %d, the host exports %d; want %d", plugAfter.Held, c.Stats().Exports-base, n)
	}
	start := time.Now()
	if err := b.Drop(); err != nil {
		return "", err
	}
	deadline := start.Add(time.Minute)
	for c.Stats().Exports != base {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the host still exports %d of %d references a minute after the plugin dropped them", c.Stats().Exports-base, n)
		}
		time.Sleep(time.Millisecond)
	}
	released := time.Since(start)
	runtime.KeepAlive(items)
	hostPer := float64(int64(hostAfter)-int64(hostBefore)) / float64(n)
	plugPer := float64(int64(plugAfter.HeapAlloc)-int64(plugBefore.HeapAlloc)) / float64(n)
	var s strings.Builder
	fmt.Fprintf(&s, "| %d live references held by the plugin (refplug) | measured | goal |\n|---|---:|---|\n", n)
	fmt.Fprintf(&s, "| host heap per reference (export table) | %.0f B | ≤ 512 B%s |\n", hostPer, verdict(hostPer <= 512))
	fmt.Fprintf(&s, "| plugin heap per reference (proxies, import table) | %.0f B | ≤ 512 B%s |\n", plugPer, verdict(plugPer <= 512))
	fmt.Fprintf(&s, "| plugin drops them all → host export table empty | %v | < 1 s%s |\n", released.Round(time.Millisecond), verdict(released < time.Second))
	return s.String(), nil
}

// heap is this process's heap after a collection (hostNow's).
func heap() uint64 { return uint64(hostNow().heap) }
