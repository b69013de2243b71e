// Command host is refplug's example host and a plugin inspector.
//
//	host run PLUGIN                          the example, narrated
//	host describe PLUGIN                     objects and method signatures
//	host call PLUGIN OBJECT METHOD [ARG...]  a call with JSON arguments
//
// `host run` loads the example plugin (cmd/example-plugin), hands it a host
// Source and a progress callback, uses the objects it returns, and narrates
// each step. describe and call work with any refplug plugin, as grpcurl
// does for gRPC servers. `host help COMMAND` explains each.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/internal/textsafe"
	"github.com/refplug/refplug/shared"
)

const usage = `usage: host <command> [arguments]

Commands:
  run PLUGIN                          run the refplug example against PLUGIN
  describe PLUGIN                     list the objects PLUGIN serves, with their methods
  call PLUGIN OBJECT METHOD [ARG...]  call a method with JSON arguments, print JSON results
  help [COMMAND]                      show help

describe and call work with any refplug plugin; run wants the example
plugin (make build: bin/example-plugin).
Log level: REFPLUG_LOG=debug|info|warn|error (default warn).
`

// command is one subcommand.
type command struct {
	usage string
	nargs func(n int) bool
	run   func(ctx context.Context, args []string, stdout io.Writer, logger hclog.Logger, opts []host.Option) error
}

var commands = map[string]command{
	"run": {
		usage: `usage: host run [-cookie KEY=VALUE] PLUGIN

Loads PLUGIN (the example plugin, bin/example-plugin), hands it a document
source and a progress callback, uses the objects it returns, and narrates
each step.
`,
		nargs: func(n int) bool { return n == 1 },
		run: func(_ context.Context, args []string, stdout io.Writer, logger hclog.Logger, opts []host.Option) error {
			return run(stdout, args[0], logger, opts...)
		},
	},
	"describe": {
		usage: `usage: host describe [-cookie KEY=VALUE] [-timeout D] PLUGIN

Lists the objects PLUGIN serves, each with its Go type and its methods'
signatures.
`,
		nargs: func(n int) bool { return n == 1 },
		run:   describe,
	},
	"call": {
		usage: `usage: host call [-cookie KEY=VALUE] [-timeout D] PLUGIN OBJECT METHOD [ARG...]

Calls METHOD of the object PLUGIN serves as OBJECT. Each ARG is one JSON
value, one per parameter: a context.Context parameter is supplied (leave it
out), a variadic parameter is one JSON array, parameters of interface or
func type cannot be given. Prints each result but a final error as one line
of JSON (an object it returns as {"object", "type", "methods"}: only Go
can call it); an error result goes to stderr, with exit status 1. With
-timeout (say 5s) it gives up when the time is out, start included, and the
method's context.Context, if it takes one, ends.

Example: host call bin/example-plugin indexer Name
`,
		nargs: func(n int) bool { return n >= 3 },
		run:   call,
	},
}

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs one command line and returns the exit status.
func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fmt.Fprint(stdout, c.usage)
				return 0
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "host: unknown command %q\n\n%s", name, usage)
		return 2
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cookie := fs.String("cookie", "", "the plugin's handshake cookie, KEY=VALUE (default: refplug's)")
	timeout := fs.Duration("timeout", 0, "describe and call: give up after this long, start included (default: no limit)")
	fs.Usage = func() {
		fmt.Fprint(stderr, cmd.usage)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if !cmd.nargs(fs.NArg()) {
		fs.Usage()
		return 2
	}
	level := hclog.LevelFromString(os.Getenv("REFPLUG_LOG"))
	if level == hclog.NoLevel {
		level = hclog.Warn
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "host", Level: level, Output: stderr})
	opts := []host.Option{host.WithLogger(logger)}
	if *cookie != "" {
		k, v, ok := strings.Cut(*cookie, "=")
		if !ok {
			fmt.Fprintf(stderr, "host: -cookie wants KEY=VALUE, got %q\n", *cookie)
			return 2
		}
		opts = append(opts, host.WithHandshake(k, v))
	}
	ctx := context.Background()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	if err := cmd.run(ctx, fs.Args(), stdout, logger, opts); err != nil {
		// Errors here start with "host:". What the plugin said in one (a
		// method's error, say) is the plugin's to choose: control
		// characters but newlines and tabs are written as Go escapes.
		fmt.Fprintln(stderr, textsafe.Escape(err.Error(), 0, "\n\t"))
		return 1
	}
	return 0
}

func describe(ctx context.Context, args []string, stdout io.Writer, _ hclog.Logger, opts []host.Option) error {
	c, err := host.LoadContext(ctx, args[0], opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	infos, err := c.DescribeContext(ctx)
	if err != nil {
		return err
	}
	for _, o := range infos {
		fmt.Fprintf(stdout, "%s (%s)\n", o.Name, o.Type)
		w := 0
		for _, m := range o.Methods {
			w = max(w, len(m.Name))
		}
		for _, m := range o.Methods {
			fmt.Fprintf(stdout, "  %-*s  %s\n", w, m.Name, m.Signature)
		}
	}
	return nil
}

func call(ctx context.Context, args []string, stdout io.Writer, _ hclog.Logger, opts []host.Option) error {
	var raw []json.RawMessage
	for i, a := range args[3:] {
		if !json.Valid([]byte(a)) {
			return fmt.Errorf("host: argument %d is not JSON: %s (hint: write a string as '\"text\"')", i+1, a)
		}
		raw = append(raw, json.RawMessage(a))
	}
	c, err := host.LoadContext(ctx, args[0], opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.CallJSONContext(ctx, args[1], args[2], raw...)
	if err != nil {
		return err
	}
	for _, r := range res {
		fmt.Fprintln(stdout, string(r))
	}
	return nil
}

// library is the host's Source: the plugin pulls documents from it.
type library struct{ docs []shared.Document }

func (l *library) List() ([]string, error) {
	paths := make([]string, len(l.docs))
	for i, d := range l.docs {
		paths[i] = d.Path
	}
	return paths, nil
}

func (l *library) Open(path string) (shared.Document, error) {
	for _, d := range l.docs {
		if d.Path == path {
			return d, nil
		}
	}
	return shared.Document{}, fmt.Errorf("open %s: %w", path, shared.ErrNoSuchDoc)
}

func newLibrary() *library {
	day := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	return &library{docs: []shared.Document{
		{Path: "guide/intro.md", Title: "Introduction", Body: "refplug runs plugins as separate processes and lets the host call them like local objects.", Modified: day, Tags: []string{"guide"}},
		{Path: "guide/plugins.md", Title: "Writing a plugin", Body: "A plugin serves objects by name; the host dispenses them as Go interfaces. A plugin can call the host back.", Modified: day.AddDate(0, 0, 1), Tags: []string{"guide", "plugin"}},
		{Path: "guide/callbacks.md", Title: "Callbacks", Body: "Pass a func or an interface to a plugin and it crosses by reference: the plugin calls the host.", Modified: day.AddDate(0, 0, 2)},
		{Path: "ref/errors.md", Title: "Errors", Body: "Errors cross by value; registered sentinels still match errors.Is on the host.", Modified: day.AddDate(0, 0, 3)},
		{Path: "ref/context.md", Title: "Contexts", Body: "Deadlines and cancellation reach the plugin; the host never waits past its own deadline.", Modified: day.AddDate(0, 0, 4)},
	}}
}

func run(w io.Writer, pluginPath string, logger hclog.Logger, opts ...host.Option) error {
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	say("Loading plugin %s", pluginPath)
	client, err := host.Load(pluginPath, append([]host.Option{host.WithLogger(logger)}, opts...)...)
	if err != nil {
		return err
	}
	defer client.Close()
	say("  started; calls travel on a %s (protocol version %d)", transportName(client.Transport()), client.Version())

	indexer, err := host.Dispense[shared.Indexer](client, "indexer")
	if err != nil {
		return err
	}
	name, err := indexer.Name()
	if err != nil {
		return err
	}
	say("  dispensed %q as shared.Indexer: %s", "indexer", name)

	lib := newLibrary()
	var progress []string
	say("Build: the host passes its Source and a progress func; the plugin pulls the documents")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix, err := indexer.Build(ctx, lib, func(done, total int) {
		progress = append(progress, fmt.Sprintf("%d/%d", done, total))
	})
	if err != nil {
		return fmt.Errorf("host: Build: %w", err)
	}
	say("  progress callbacks from the plugin: %s", strings.Join(progress, " "))
	st, err := ix.Stats()
	if err != nil {
		return err
	}
	say("  the plugin returned an Index object: %d documents, %d terms", st.Documents, st.Terms)

	say("Search %q: the Index object returns a Cursor object", "plugin host")
	cur, err := ix.Search(ctx, "plugin host")
	if err != nil {
		return fmt.Errorf("host: Search: %w", err)
	}
	for i := 1; ; i++ {
		hit, ok, err := cur.Next()
		if err != nil {
			return fmt.Errorf("host: Next: %w", err)
		}
		if !ok {
			break
		}
		say("  %d. %-20s score %.0f  %q", i, hit.Path, hit.Score, hit.Snippet)
	}
	if err := cur.Close(); err != nil {
		return err
	}

	_, err = ix.Get("guide/missing.md")
	say("Get a missing document: %v", err)
	say("  errors.Is(err, shared.ErrNoSuchDoc) = %v", errors.Is(err, shared.ErrNoSuchDoc))
	if !errors.Is(err, shared.ErrNoSuchDoc) {
		return fmt.Errorf("host: Get(missing) = %v, want shared.ErrNoSuchDoc", err)
	}

	say("Build again, cancelling from the progress callback after 2 documents")
	cctx, ccancel := context.WithCancel(context.Background())
	_, err = indexer.Build(cctx, lib, func(done, total int) {
		if done == 2 {
			ccancel()
		}
	})
	ccancel()
	say("  the plugin stopped: %v", err)
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("host: cancelled Build = %v, want context.Canceled", err)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), time.Nanosecond)
	<-dctx.Done()
	_, err = ix.Search(dctx, "plugin")
	dcancel()
	say("Search with a deadline that has passed: %v", err)

	if err := client.Close(); err != nil {
		return err
	}
	_, err = ix.Stats()
	say("Closed the plugin; the Index object now answers: %v", err)
	return nil
}

// transportName says what Client.Transport's answer means.
func transportName(t string) string {
	switch t {
	case gp.TransportSocket:
		return "private socket pair"
	case gp.TransportMuxBroker:
		return "go-plugin broker stream"
	}
	return t
}
