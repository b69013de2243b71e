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
// registers it with refbroker.RegisterInterface.
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
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode"

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
		for _, r := range done {
			if types.Identical(r.t, tn.Type()) {
				why := "remove that registration, or leave " + tn.Name() + " out with -type"
				if n, ok := types.Unalias(tn.Type()).(*types.Named); ok && n.TypeArgs().Len() > 0 {
					why = "refgen writes proxies for the instantiations of generic interfaces the other interfaces use: generate an alias with -type only for one they do not"
				}
				return nil, fmt.Errorf("refgen: %s: a proxy for %s is already registered in %s (%s)", tn.Name(), g.typeString(types.Unalias(tn.Type())), r.file, why)
			}
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

type generator struct {
	pkg     *types.Package
	imports map[string]string // path -> local name
	taken   map[string]bool   // local names of imports
	proxies map[string]bool   // proxy types written
	body    bytes.Buffer
	inits   []string
}

func newGenerator(pkg *types.Package) *generator {
	g := &generator{pkg: pkg, imports: map[string]string{}, taken: map[string]bool{}, proxies: map[string]bool{}}
	g.importName(refbrokerPath, "refbroker")
	return g
}

// importName returns the local name for the package at path, importing it.
func (g *generator) importName(path, name string) string {
	if n, ok := g.imports[path]; ok {
		return n
	}
	local := name
	for i := 2; g.taken[local] || g.pkg.Scope().Lookup(local) != nil; i++ {
		local = fmt.Sprintf("%s%d", name, i)
	}
	g.imports[path] = local
	g.taken[local] = true
	return local
}

func (g *generator) qualifier(p *types.Package) string {
	if p == g.pkg {
		return ""
	}
	return g.importName(p.Path(), p.Name())
}

func (g *generator) typeString(t types.Type) string { return types.TypeString(t, g.qualifier) }

func (g *generator) proxy(tn *types.TypeName) error {
	proxy := lowerFirst(tn.Name()) + "Proxy"
	if g.pkg.Scope().Lookup(proxy) != nil {
		return fmt.Errorf("refgen: %s: %s is already declared in package %s (remove the hand-written proxy)", tn.Name(), proxy, g.pkg.Path())
	}
	return g.emit(tn.Name(), proxy, tn.Type().Underlying().(*types.Interface))
}

// instanceProxy writes the proxy of n, an instantiation of one of the
// package's generic interfaces (Store[int]) that the contract reaches,
// named after the interface and its type arguments (storeOfIntProxy).
func (g *generator) instanceProxy(n *types.Named) error {
	base := lowerFirst(n.Origin().Obj().Name()) + "Of"
	for i := range n.TypeArgs().Len() {
		base += identWords(types.TypeString(n.TypeArgs().At(i), func(p *types.Package) string {
			if p == g.pkg {
				return ""
			}
			return p.Name()
		}))
	}
	proxy := base + "Proxy"
	for i := 2; g.pkg.Scope().Lookup(proxy) != nil || g.proxies[proxy]; i++ {
		proxy = fmt.Sprintf("%s%dProxy", base, i)
	}
	return g.emit(g.typeString(n), proxy, n.Underlying().(*types.Interface))
}

// emit writes the proxy named proxy of the interface iface, spelled typ
// in Go (Store, or Store[int]), and its registration.
func (g *generator) emit(typ, proxy string, iface *types.Interface) error {
	name := typ
	g.proxies[proxy] = true
	if problems := crossProblems(g.pkg, name, iface); len(problems) > 0 {
		return fmt.Errorf("refgen: %s", strings.Join(problems, "\nrefgen: "))
	}
	methods := map[string]bool{}
	for i := range iface.NumMethods() {
		methods[iface.Method(i).Name()] = true
	}
	// The embedded *refbroker.Ref gives the proxy its Invoke and lets the
	// broker recognise it. Its field is named Ref, or Handle (an alias) when
	// the interface has a method named Ref.
	field := "Ref"
	if methods["Ref"] {
		field = "Handle"
		if methods["Handle"] {
			return fmt.Errorf("refgen: %s has methods named both Ref and Handle; the proxy needs one of those names", name)
		}
	}
	rb := g.imports[refbrokerPath]
	fmt.Fprintf(&g.body, "// %s forwards %s's methods to the remote object.\n", proxy, name)
	fmt.Fprintf(&g.body, "type %s struct{ *%s.%s }\n\n", proxy, rb, field)
	for i := range iface.NumMethods() {
		m := iface.Method(i)
		if !m.Exported() {
			return fmt.Errorf("refgen: %s.%s: an unexported method cannot be called across processes", name, m.Name())
		}
		g.method(proxy, field, m)
	}
	g.inits = append(g.inits, fmt.Sprintf("\t%s.RegisterInterface[%s](func(r *%s.Ref) %s { return %s{r} })\n", rb, typ, rb, typ, proxy))
	return nil
}

// identWords turns a type's spelling into words for an identifier:
// "map[string]*pkg.Event" becomes "MapStringPkgEvent", "[]int" "SliceInt".
func identWords(s string) string {
	s = strings.NewReplacer("[]", " slice ", "*", " ptr ", "map[", " map ", "chan ", " chan ", "func(", " func ").Replace(s)
	var b strings.Builder
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

func (g *generator) method(proxy, field string, m *types.Func) {
	sig := m.Type().(*types.Signature)
	// Spell every type first: that imports the packages they need, whose
	// names the local variables must then not shadow.
	for _, tuple := range []*types.Tuple{sig.Params(), sig.Results()} {
		for i := range tuple.Len() {
			g.typeString(tuple.At(i).Type())
		}
	}
	local := newLocals(g)
	recv := local.name("p")
	params := sig.Params()
	var decl, args []string
	for i := range params.Len() {
		n := params.At(i).Name()
		if n == "" || n == "_" {
			n = fmt.Sprintf("a%d", i)
		}
		n = local.name(n)
		t := params.At(i).Type()
		ts := g.typeString(t)
		if sig.Variadic() && i == params.Len()-1 {
			ts = "..." + g.typeString(t.(*types.Slice).Elem())
		}
		decl = append(decl, n+" "+ts)
		args = append(args, n)
	}
	results := sig.Results()
	errLast := results.Len() > 0 && types.Identical(results.At(results.Len()-1).Type(), types.Universe.Lookup("error").Type())
	// Named results keep their names (they document the method); the
	// proxy then declares them in its signature rather than as variables.
	named := results.Len() > 0
	for i := range results.Len() {
		if n := results.At(i).Name(); n == "" || n == "_" {
			named = false
		}
	}
	var rtypes, rnames, rvars []string
	for i := range results.Len() {
		rtypes = append(rtypes, g.typeString(results.At(i).Type()))
		n := fmt.Sprintf("r%d", i)
		if named {
			n = results.At(i).Name()
		}
		rnames = append(rnames, local.name(n))
		if i < results.Len()-1 || !errLast {
			rvars = append(rvars, rnames[i])
		}
	}
	rlist := strings.Join(rtypes, ", ")
	if named {
		var parts []string
		for i := range rtypes {
			parts = append(parts, rnames[i]+" "+rtypes[i])
		}
		rlist = "(" + strings.Join(parts, ", ") + ")"
	} else if len(rtypes) > 1 {
		rlist = "(" + rlist + ")"
	}
	b := &g.body
	fmt.Fprintf(b, "func (%s %s) %s(%s) %s {\n", recv, proxy, m.Name(), strings.Join(decl, ", "), rlist)
	if !named {
		for i, v := range rvars {
			fmt.Fprintf(b, "\tvar %s %s\n", v, rtypes[i])
		}
	}
	argList := "nil"
	if len(args) > 0 {
		argList = "[]any{" + strings.Join(args, ", ") + "}"
	}
	call := fmt.Sprintf("%s.%s.Invoke(%q, %s", recv, field, m.Name(), argList)
	for _, v := range rvars {
		call += ", &" + v
	}
	call += ")"
	errVar := local.name("err")
	switch {
	case errLast && len(rvars) == 0:
		fmt.Fprintf(b, "\treturn %s\n", call)
	case errLast && named:
		errVar = rnames[len(rnames)-1]
		fmt.Fprintf(b, "\t%s = %s\n", errVar, call)
		fmt.Fprintf(b, "\treturn %s\n", strings.Join(rnames, ", "))
	case errLast:
		fmt.Fprintf(b, "\t%s := %s\n", errVar, call)
		fmt.Fprintf(b, "\treturn %s\n", strings.Join(append(slices.Clone(rvars), errVar), ", "))
	default:
		fmt.Fprintf(b, "\tif %s := %s; %s != nil {\n", errVar, call, errVar)
		fmt.Fprintf(b, "\t\t%s.%s.LogFailure(%q, %s)\n\t}\n", recv, field, m.Name(), errVar)
		if len(rvars) > 0 {
			fmt.Fprintf(b, "\treturn %s\n", strings.Join(rvars, ", "))
		}
	}
	b.WriteString("}\n\n")
}

// locals hands out names for one method's variables that shadow nothing
// the method's code refers to: the package's declarations and imports.
type locals struct {
	g    *generator
	used map[string]bool
}

func newLocals(g *generator) *locals { return &locals{g: g, used: map[string]bool{}} }

func (l *locals) name(base string) string {
	n := base
	for l.used[n] || l.g.pkg.Scope().Lookup(n) != nil || l.g.taken[n] || types.Universe.Lookup(n) != nil {
		n += "_"
	}
	l.used[n] = true
	return n
}

func (g *generator) file() []byte {
	var b bytes.Buffer
	b.WriteString("// Code generated by refgen; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package %s\n\n", g.pkg.Name())
	paths := make([]string, 0, len(g.imports))
	for p := range g.imports {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	b.WriteString("import (\n")
	for _, p := range paths {
		if name := g.imports[p]; name != lastElem(p) {
			fmt.Fprintf(&b, "\t%s %q\n", name, p)
		} else {
			fmt.Fprintf(&b, "\t%q\n", p)
		}
	}
	b.WriteString(")\n\n")
	b.Write(g.body.Bytes())
	b.WriteString("func init() {\n")
	for _, s := range g.inits {
		b.WriteString(s)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func lastElem(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func lowerFirst(s string) string {
	r := []rune(s)
	// An initialism such as "HTTPClient" becomes "httpClient".
	i := 0
	for i < len(r) && unicode.IsUpper(r[i]) {
		i++
	}
	switch {
	case i == 0:
		return s
	case i == 1 || i == len(r):
		for j := range i {
			r[j] = unicode.ToLower(r[j])
		}
	default:
		for j := range i - 1 {
			r[j] = unicode.ToLower(r[j])
		}
	}
	return string(r)
}

// instances returns the instantiations of the package's own generic
// interfaces (Store[int]) that the interfaces ifaces reach, at any depth,
// but are not among them (an alias, type IntStore = Store[int], generated
// with -type): each needs a proxy, and only this package can be relied on
// to register it, unless it already does (done: the types the package's
// other files register). In the order of their spelling.
func instances(pkg *types.Package, ifaces []*types.TypeName, done []registration) []*types.Named {
	byName := map[string]*types.Named{}
	reachable(ifaces, func(t types.Type) {
		n, ok := types.Unalias(t).(*types.Named)
		if !ok || n.TypeArgs().Len() == 0 || n.Origin().Obj().Pkg() != pkg {
			return
		}
		if iface, ok := n.Underlying().(*types.Interface); !ok || !iface.IsMethodSet() || iface.NumMethods() == 0 {
			return
		}
		if !concrete(n) {
			return // inside a generic declaration, not an instantiation
		}
		for _, tn := range ifaces {
			if types.Identical(tn.Type(), n) {
				return
			}
		}
		for _, r := range done {
			if types.Identical(r.t, n) {
				return
			}
		}
		byName[types.TypeString(n, nil)] = n
	})
	out := make([]*types.Named, 0, len(byName))
	for _, k := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[k])
	}
	return out
}

// registration is a proxy registered in one of the package's files.
type registration struct {
	t    types.Type
	file string
}

// registered returns the types the package's files register proxies for
// (refbroker.RegisterInterface[T]): another file generated by refgen with
// -type for an alias of an instantiation (type StringCache =
// Cache[string]), or a hand-written proxy. The file being generated was
// read as empty.
func registered(pkg *packages.Package) []registration {
	var out []registration
	for _, f := range pkg.Syntax {
		ast.Inspect(f, func(node ast.Node) bool {
			ix, ok := node.(*ast.IndexExpr)
			if !ok {
				return true
			}
			if sel, ok := ix.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "RegisterInterface" {
				if obj, ok := pkg.TypesInfo.Uses[sel.Sel].(*types.Func); ok && obj.Pkg() != nil && obj.Pkg().Path() == refbrokerPath {
					if tv, ok := pkg.TypesInfo.Types[ix.Index]; ok && tv.Type != nil {
						out = append(out, registration{tv.Type, filepath.Base(pkg.Fset.Position(ix.Pos()).Filename)})
					}
				}
			}
			return true
		})
	}
	return out
}
