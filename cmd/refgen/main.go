// Command refgen writes refbroker proxies for Go interfaces, so a contract
// package needs no hand-written forwarding code. Put in the package that
// declares the interfaces:
//
//	//go:generate go tool refgen
//
// and run go generate, once refgen is a tool of the module (go get -tool
// github.com/refplug/refplug/cmd/refgen@latest), which keeps its
// dependencies in the module's go.sum. (Inside the refplug module itself,
// go run github.com/refplug/refplug/cmd/refgen does the same.) refgen writes refplug_proxies.go beside the package's
// files: for each interface a proxy type (one method per interface method,
// each forwarding through refbroker.Ref.Invoke) and an init func that
// registers it with refbroker.RegisterInterface. The proxy of an interface
// with io.Reader's Read method and no WriteTo also gets a WriteTo, and of
// one with io.Writer's Write and no ReadFrom a ReadFrom (both
// refbroker.CopyInChunks), so that io.Copy from or into it moves a
// megabyte a round trip.
//
// Usage:
//
//	refgen [-type Store,Listener] [-output refplug_proxies.go] [-check] [DIR]
//
// Without -type, every exported interface with methods is covered (type
// constraints are skipped, and so are generic interfaces, with a note on
// stderr). The instantiations of the package's generic interfaces that the
// covered interfaces use, at any depth, get proxies too (Cache[string] as
// cacheOfStringProxy), unless a file of the package registers one already;
// for another, name it, type StringCache = Cache[string], and generate it
// with -type StringCache. DIR is the package
// directory, "." by default. With -check, refgen writes nothing and exits 1
// if the file on disk differs from what it would write (for CI).
//
// A method without an error result cannot report a failed call; its proxy
// returns zero values and logs the failure through the connection's logger
// (see refbroker.Ref.LogFailure).
//
// refgen refuses an interface whose types cannot cross, naming each place
// as Dispense would, and notes on stderr a data type that embeds a struct
// of an unexported type: Go promotes its exported fields, but the embedded
// field is unexported, so, as with gob, they do not cross.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/packages"
)

const refbrokerPath = "github.com/refplug/refplug/refbroker"

func main() {
	typeList := flag.String("type", "", "comma-separated interface names (default: every exported interface)")
	output := flag.String("output", "refplug_proxies.go", "name of the file to write in the package directory")
	check := flag.Bool("check", false, "do not write; exit 1 if the file is missing or stale")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: refgen [-type A,B] [-output FILE] [-check] [DIR]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	dir := "."
	switch flag.NArg() {
	case 0:
	case 1:
		dir = flag.Arg(0)
	default:
		flag.Usage()
		os.Exit(2)
	}
	var names []string
	if *typeList != "" {
		for _, n := range strings.Split(*typeList, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	if err := checkOutput(*output, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := filepath.Join(dir, *output)
	src, err := generate(dir, *output, names)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *check {
		old, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(old, src) {
			fmt.Fprintf(os.Stderr, "refgen: %s is stale; run go generate (or refgen) in %s\n", out, dir)
			os.Exit(1)
		}
		return
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "refgen:", err)
		os.Exit(1)
	}
}

// checkOutput refuses an -output that is not a Go file's name: refgen
// writes it in the package directory dir, so a path (which it used to
// join to dir, "/tmp/x.go" becoming dir/tmp/x.go) is an error.
func checkOutput(name, dir string) error {
	if name == "" || filepath.Base(name) != name || !strings.HasSuffix(name, ".go") {
		return fmt.Errorf("refgen: -output %q: give a file name ending in .go; refgen writes it in the package directory (%s)", name, dir)
	}
	return nil
}

// generate returns the proxy file for the package in dir. The existing
// output file, if any, is read as empty, so a stale one does not get in
// the way.
func generate(dir, output string, names []string) ([]byte, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(absDir); err != nil {
		return nil, fmt.Errorf("refgen: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("refgen: %s is not a directory (give the contract package's directory)", dir)
	}
	outPath := filepath.Join(absDir, output)
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedTypes | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypesInfo,
		Dir:  absDir,
	}
	if f, err := parser.ParseFile(token.NewFileSet(), outPath, nil, parser.PackageClauseOnly); err == nil {
		cfg.Overlay = map[string][]byte{outPath: []byte("package " + f.Name.Name + "\n")}
	}
	pkgs, err := packages.Load(cfg, ".")
	if err != nil {
		return nil, fmt.Errorf("refgen: loading %s: %w", dir, err)
	}
	switch {
	case len(pkgs) == 0:
		return nil, fmt.Errorf("refgen: %s: no Go package found there (is it inside a Go module, with a go.mod in it or above it?)", dir)
	case len(pkgs) > 1:
		return nil, fmt.Errorf("refgen: %s is not one Go package", dir)
	}
	// Type errors are tolerated: the package may use the very proxies being
	// generated (go list reports them too, as its compile's). Errors in the
	// interfaces themselves surface when the generated code is compiled.
	// A file that does not parse is not tolerated, nor a package that could
	// not be loaded at all.
	var bad []string
	for _, e := range pkgs[0].Errors {
		if e.Kind == packages.ParseError || pkgs[0].Types == nil {
			bad = append(bad, e.Error())
		}
	}
	if len(bad) > 0 || pkgs[0].Types == nil {
		if len(bad) == 0 {
			bad = []string{"no Go package found there"}
		}
		if n := len(bad); n > 3 {
			bad = append(bad[:3], fmt.Sprintf("and %d more", n-3))
		}
		return nil, fmt.Errorf("refgen: %s: %s", dir, strings.Join(bad, "; "))
	}
	pkg := pkgs[0]
	ifaces, err := selectInterfaces(pkg.Types, names)
	if err != nil {
		return nil, err
	}
	g := newGenerator(pkg.Types)
	done := registered(pkg)
	for _, tn := range ifaces {
		if r, ok := registeredAs(done, tn.Type()); ok {
			why := "remove that registration, or leave " + tn.Name() + " out with -type"
			if n, ok := types.Unalias(tn.Type()).(*types.Named); ok && n.TypeArgs().Len() > 0 {
				why = "refgen writes proxies for the instantiations of generic interfaces the other interfaces use: generate an alias with -type only for one they do not"
			}
			return nil, fmt.Errorf("refgen: %s: a proxy for %s is already registered in %s (%s)", tn.Name(), g.typeString(types.Unalias(tn.Type())), r.file, why)
		}
		if err := g.proxy(tn); err != nil {
			return nil, err
		}
	}
	for _, n := range instances(pkg.Types, ifaces, done) {
		if err := g.instanceProxy(n); err != nil {
			return nil, err
		}
	}
	for _, n := range droppedEmbeds(ifaces) {
		fmt.Fprintf(notes, "refgen: %s\n", n)
	}
	if data := dataTypes(pkg.Types, ifaces); len(data) > 0 {
		rb := g.imports[refbrokerPath]
		var b strings.Builder
		fmt.Fprintf(&b, "\t// The data types the contract reaches travel by value in an any.\n\t%s.RegisterTypes(\n", rb)
		for _, t := range data {
			fmt.Fprintf(&b, "\t\t*new(%s),\n", g.typeString(t))
		}
		b.WriteString("\t)\n")
		g.inits = append(g.inits, b.String())
	}
	src := g.file()
	formatted, err := format.Source(src)
	if err != nil {
		return nil, fmt.Errorf("refgen: internal error: the generated code does not parse: %v\n%s", err, src)
	}
	return formatted, nil
}

// notes is where refgen says what it skipped (a test replaces it).
var notes io.Writer = os.Stderr

func selectInterfaces(pkg *types.Package, names []string) ([]*types.TypeName, error) {
	scope := pkg.Scope()
	if len(names) == 0 {
		var generic []string
		for _, n := range scope.Names() { // sorted
			tn, ok := scope.Lookup(n).(*types.TypeName)
			if !ok || !tn.Exported() || tn.IsAlias() {
				continue
			}
			iface, ok := tn.Type().Underlying().(*types.Interface)
			switch {
			case !ok:
			case isGeneric(tn) && iface.IsMethodSet() && iface.NumMethods() > 0:
				generic = append(generic, n)
			case usable(tn, iface) == nil:
				names = append(names, n)
			}
		}
		if len(generic) > 0 {
			// Not an error: the package may declare them for other uses.
			fmt.Fprintf(notes, "refgen: generic interface %s: proxies are written for the instantiations the other interfaces use; for another, name it (type X = %s[int]) and generate it with -type X\n",
				strings.Join(generic, ", "), generic[0])
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("refgen: package %s declares no exported interface with methods that refgen can generate a proxy for", pkg.Path())
		}
	}
	var out []*types.TypeName
	for _, n := range names {
		tn, ok := scope.Lookup(n).(*types.TypeName)
		if !ok {
			return nil, fmt.Errorf("refgen: -type %s: no such type in package %s", n, pkg.Path())
		}
		iface, ok := tn.Type().Underlying().(*types.Interface)
		if !ok {
			return nil, fmt.Errorf("refgen: -type %s: %s.%s is not an interface", n, pkg.Name(), n)
		}
		if err := usable(tn, iface); err != nil {
			return nil, fmt.Errorf("refgen: -type %s: %v", n, err)
		}
		out = append(out, tn)
	}
	return out, nil
}

func isGeneric(tn *types.TypeName) bool {
	named, ok := tn.Type().(*types.Named)
	return ok && named.TypeParams().Len() > 0
}

func usable(tn *types.TypeName, iface *types.Interface) error {
	if isGeneric(tn) {
		return fmt.Errorf("generic interfaces are not supported: name an instantiation (type X = %s[T]) and generate it with -type X", tn.Name())
	}
	if !iface.IsMethodSet() {
		return fmt.Errorf("a type constraint is not a method set")
	}
	if iface.NumMethods() == 0 {
		return fmt.Errorf("it has no methods (an empty interface crosses by the broker's own rules)")
	}
	return nil
}
