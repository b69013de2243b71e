package main

import (
	"bytes"
	"fmt"
	"go/types"
	"slices"
	"sort"
	"strings"
	"unicode"
)

// The generator: the proxy file's code, written from go/types.

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
	if hasIOMethod(iface, "Read") && !methods["WriteTo"] {
		g.bulkCopy(proxy, "WriteTo", "w", "Writer", "io.Copy from the remote reader read")
	}
	if hasIOMethod(iface, "Write") && !methods["ReadFrom"] {
		g.bulkCopy(proxy, "ReadFrom", "r", "Reader", "io.Copy into the remote writer write")
	}
	g.inits = append(g.inits, fmt.Sprintf("\t%s.RegisterInterface[%s](func(r *%s.Ref) %s { return %s{r} })\n", rb, typ, rb, typ, proxy))
	return nil
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

// hasIOMethod reports whether iface has io.Reader's Read or io.Writer's
// Write (name): func([]byte) (int, error).
func hasIOMethod(iface *types.Interface, name string) bool {
	for i := range iface.NumMethods() {
		m := iface.Method(i)
		if m.Name() != name {
			continue
		}
		sig := m.Type().(*types.Signature)
		if sig.Variadic() || sig.Params().Len() != 1 || sig.Results().Len() != 2 {
			return false
		}
		p, ok := sig.Params().At(0).Type().(*types.Slice)
		return ok && types.Identical(p.Elem(), types.Typ[types.Uint8]) &&
			types.Identical(sig.Results().At(0).Type(), types.Typ[types.Int]) &&
			types.Identical(sig.Results().At(1).Type(), types.Universe.Lookup("error").Type())
	}
	return false
}

// bulkCopy gives the proxy of a reader a WriteTo, or of a writer a
// ReadFrom, both refbroker.CopyInChunks, so that io.Copy from or into it
// moves a megabyte a round trip instead of 32 KiB (or io.Discard's 8 KiB).
func (g *generator) bulkCopy(proxy, method, arg, argType, what string) {
	io := g.importName("io", "io")
	rb := g.imports[refbrokerPath]
	local := newLocals(g)
	recv, a := local.name("p"), local.name(arg)
	fmt.Fprintf(&g.body, "// %s makes %s a megabyte a round trip\n// (refbroker.CopyInChunks).\n", method, what)
	fmt.Fprintf(&g.body, "func (%s %s) %s(%s %s.%s) (int64, error) {\n", recv, proxy, method, a, io, argType)
	w, r := a, recv // WriteTo(w): from the proxy into w
	if method == "ReadFrom" {
		w, r = recv, a
	}
	fmt.Fprintf(&g.body, "\treturn %s.CopyInChunks(%s, %s)\n}\n\n", rb, w, r)
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
