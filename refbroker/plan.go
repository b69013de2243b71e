package refbroker

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Call plans: how a call of one func type crosses, and which methods a
// reference of one static type grants. Built once per type and cached.

// funcPlan is how a call of one func type crosses: the codecs of its
// parameters and results, and where its context and error are.
type funcPlan struct {
	t        reflect.Type
	ctx      bool     // the first parameter is a context.Context
	in       []*codec // parameters, without the context
	out      []*codec // results, error included
	errOut   bool     // the last result is an error
	variadic bool
	// outParams says which parameters (without the context) are restored
	// after the call (outparams.go); nil if none is.
	outParams []outParam
	// outRefs says which outStatic parameters point to data holding
	// references, restored only to a peer that reads them
	// (featRestoreRefs); oldOut, whether a peer without that feature
	// expects a restore at all (it has an outAny, or an outStatic of
	// plain data).
	outRefs []bool
	oldOut  bool
	// request is the index (without the context) of the first
	// *http.Request parameter, whose context the call carries when the
	// method takes none; -1 if none.
	request int
}

var funcPlans sync.Map // reflect.Type -> *funcPlan

// funcPlanFor returns the plan for calls of the func type t (a method's type
// without its receiver), or an error naming the parameter or result that
// cannot cross.
func funcPlanFor(t reflect.Type) (*funcPlan, error) {
	if p, ok := funcPlans.Load(t); ok {
		return p.(*funcPlan), nil
	}
	p := &funcPlan{t: t, variadic: t.IsVariadic(), request: -1}
	for i := range t.NumIn() {
		pt := t.In(i)
		if i == 0 && pt == contextType {
			p.ctx = true
			continue
		}
		c, err := codecFor(pt)
		if err != nil {
			return nil, within(err, fmt.Sprintf("parameter %d", i+1))
		}
		if pt == requestType && p.request < 0 {
			p.request = len(p.in)
		}
		p.in = append(p.in, c)
		op := outParamOf(pt)
		refs := op == outStatic && typeHoldsReference(pt.Elem())
		p.outParams = append(p.outParams, op)
		p.outRefs = append(p.outRefs, refs)
		p.oldOut = p.oldOut || op == outAny || op == outStatic && !refs
	}
	if !slices.ContainsFunc(p.outParams, func(o outParam) bool { return o != outNone }) {
		p.outParams, p.outRefs = nil, nil
	}
	for i := range t.NumOut() {
		c, err := codecFor(t.Out(i))
		if err != nil {
			return nil, within(err, fmt.Sprintf("result %d", i+1))
		}
		p.out = append(p.out, c)
	}
	p.errOut = t.NumOut() > 0 && t.Out(t.NumOut()-1) == errorType
	actual, _ := funcPlans.LoadOrStore(t, p)
	return actual.(*funcPlan), nil
}

// methodPlan is one method a reference grants.
type methodPlan struct {
	name  string // "Get"
	full  string // "shared.Store.Get", for messages
	index int    // method index in the receiver's reflect.Value; -1 for a func
	plan  *funcPlan
	// fills says the method fills its first parameter after the
	// context, a byte slice, as io.Reader's Read does (fillsBuffer).
	fills bool
	// sendsLength says the method is io.Reader's Read or io.ReaderAt's
	// ReadAt, whose buffer's contents the callee must not read (it may
	// use all of it as scratch): its caller sends the buffer's length
	// alone, to a peer that reads that (featBufferLength).
	sendsLength bool
}

// newMethodPlan is the plan of the method name, of type fp.t.
func newMethodPlan(name, full string, index int, fp *funcPlan) *methodPlan {
	return &methodPlan{name: name, full: full, index: index, plan: fp, fills: fillsBuffer(name, fp.t),
		sendsLength: name == "Read" && fp.t == readType || name == "ReadAt" && fp.t == readAtType}
}

// The types of io.Reader's Read and io.ReaderAt's ReadAt.
var (
	readType   = reflect.TypeFor[func([]byte) (int, error)]()
	readAtType = reflect.TypeFor[func([]byte, int64) (int, error)]()
)

// fillsBuffer reports whether a method fills a byte slice for its caller:
// its first parameter after the context. Arguments cross by value, so a
// callee writing into a slice it was given writes into its own copy; for
// most methods that is what the caller expects (a Write does not change
// its buffer), but a method that reads into the caller's buffer, as
// io.Reader's Read(p []byte) (n int, err error) and io.ReaderAt's ReadAt
// do, must have p[:n] come back. Such a method is known by Go's naming
// and shape: named Read, or Read followed by an upper-case letter
// (ReadAt, ReadFull, ReadBlock), its first parameter after a context a
// slice of bytes, its results (int, error). Both sides decide alike from
// the method's name and type, which the contract check compares.
func fillsBuffer(name string, t reflect.Type) bool {
	if rest, ok := strings.CutPrefix(name, "Read"); !ok || rest != "" && !unicode.IsUpper(firstRune(rest)) {
		return false
	}
	first := 0
	if t.NumIn() > 0 && t.In(0) == contextType {
		first = 1
	}
	if t.NumIn() <= first || t.NumOut() != 2 || t.Out(0).Kind() != reflect.Int || t.Out(1) != errorType {
		return false
	}
	p := t.In(first)
	return p.Kind() == reflect.Slice && p.Elem().Kind() == reflect.Uint8 && !(first == t.NumIn()-1 && t.IsVariadic())
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

// ifacePlan is the set of methods a reference of one static type grants.
type ifacePlan struct {
	t       reflect.Type
	methods map[string]*methodPlan
}

var ifacePlans sync.Map // reflect.Type -> *ifacePlan

// ifacePlanFor returns the method set of the interface type t.
func ifacePlanFor(t reflect.Type) (*ifacePlan, error) {
	if p, ok := ifacePlans.Load(t); ok {
		return p.(*ifacePlan), nil
	}
	p := &ifacePlan{t: t, methods: make(map[string]*methodPlan, t.NumMethod())}
	for i := range t.NumMethod() {
		m := t.Method(i)
		fp, err := funcPlanFor(m.Type)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t, m.Name, err)
		}
		p.methods[m.Name] = newMethodPlan(m.Name, shownName(t, m.Name), i, fp)
	}
	actual, _ := ifacePlans.LoadOrStore(t, p)
	return actual.(*ifacePlan), nil
}

// funcMethods is the method set of a func reference: the func itself,
// called by the empty method name.
func funcMethods(t reflect.Type) (*ifacePlan, error) {
	if p, ok := ifacePlans.Load(t); ok {
		return p.(*ifacePlan), nil
	}
	fp, err := funcPlanFor(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	p := &ifacePlan{t: t, methods: map[string]*methodPlan{"": {full: t.String(), index: -1, plan: fp}}}
	actual, _ := ifacePlans.LoadOrStore(t, p)
	return actual.(*ifacePlan), nil
}

// anyMethods is the empty method set of a reference that crossed as any.
var anyMethods = &ifacePlan{t: anyType, methods: map[string]*methodPlan{}}

// methodsFor is the method set a reference of static type t grants on the
// wire: a func's call, an interface's methods (or its wire adapter's, see
// builtin.go), nothing for any.
func methodsFor(t reflect.Type) (*ifacePlan, error) {
	switch classify(t) {
	case kindFunc:
		return funcMethods(t)
	case kindInterface:
		if a, ok := adapters[t]; ok {
			return ifacePlanFor(a.wire)
		}
		return ifacePlanFor(t)
	}
	return anyMethods, nil
}
