// Command host is refplug's example host. `host run PLUGIN` loads the
// example plugin (cmd/example-plugin), hands it a host Source and a progress
// callback, uses the objects it returns, and narrates each step.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/shared"
)

const usage = `usage: host run PLUGIN

Runs the refplug example against PLUGIN (build it with 'make build': bin/example-plugin).
Log level: REFPLUG_LOG=debug|info|warn (default warn).
`

func main() {
	if len(os.Args) != 3 || os.Args[1] != "run" {
		fmt.Fprint(os.Stderr, usage)
		if len(os.Args) == 2 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help") {
			os.Exit(0)
		}
		os.Exit(2)
	}
	level := hclog.LevelFromString(os.Getenv("REFPLUG_LOG"))
	if level == hclog.NoLevel {
		level = hclog.Warn
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "host", Level: level, Output: os.Stderr})
	if err := run(os.Stdout, os.Args[2], logger); err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		os.Exit(1)
	}
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

func run(w io.Writer, pluginPath string, logger hclog.Logger) error {
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	say("Loading plugin %s", pluginPath)
	client, err := host.Load(pluginPath, host.WithLogger(logger))
	if err != nil {
		return err
	}
	defer client.Close()

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
		return fmt.Errorf("Build: %w", err)
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
		return fmt.Errorf("Search: %w", err)
	}
	for i := 1; ; i++ {
		hit, ok, err := cur.Next()
		if err != nil {
			return fmt.Errorf("Next: %w", err)
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
		return fmt.Errorf("Get(missing) = %v, want shared.ErrNoSuchDoc", err)
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
		return fmt.Errorf("cancelled Build = %v, want context.Canceled", err)
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
