package refbroker

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
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
		p.outParams = append(p.outParams, outParamOf(pt))
	}
	if !slices.ContainsFunc(p.outParams, func(o outParam) bool { return o != outNone }) {
		p.outParams = nil
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
		p.methods[m.Name] = &methodPlan{name: m.Name, full: t.String() + "." + m.Name, index: i, plan: fp}
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
