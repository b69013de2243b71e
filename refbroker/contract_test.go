package refbroker

import (
	"strings"
	"testing"
)

type codeErr struct{ Code int }

func (e *codeErr) Error() string { return "code" }

type unproxied interface{ Do() error }

// manyProblems has a problem in each method.
type manyProblems interface {
	Watch(c chan int) error
	Callback() (func(chan string), error)
	Get() (unproxied, error)
	Fetch(id string) (string, *codeErr)
	Fine(s string) (string, error)
}

type manyProblemsProxy struct{ *Ref }

func (manyProblemsProxy) Watch(chan int) error                 { return nil }
func (manyProblemsProxy) Callback() (func(chan string), error) { return nil, nil }
func (manyProblemsProxy) Get() (unproxied, error)              { return nil, nil }
func (manyProblemsProxy) Fetch(string) (string, *codeErr)      { return "", nil }
func (manyProblemsProxy) Fine(string) (string, error)          { return "", nil }

func init() {
	RegisterInterface[manyProblems](func(r *Ref) manyProblems { return manyProblemsProxy{r} })
}

// TestDispenseNamesEveryProblem: Dispense lists every problem of a
// contract at once, each with its method and parameter or result.
func TestDispenseNamesEveryProblem(t *testing.T) {
	client, _ := testPair(t, nil)
	_, err := Dispense[manyProblems](client, "x")
	if err == nil {
		t.Fatal("Dispense of a broken contract succeeded")
	}
	for _, want := range []string{
		"4 problems",
		"refbroker.manyProblems.Watch: parameter 1: chan int cannot cross",
		"refbroker.manyProblems.Callback: result 1: func(chan string): parameter 1: chan string cannot cross",
		"refbroker.manyProblems.Get: result 1: no proxy registered for interface refbroker.unproxied",
		"refbroker.manyProblems.Fetch: result 2 is *refbroker.codeErr, an error type",
		"refbroker.RegisterFailure[*refbroker.codeErr]",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Dispense = %v\nwant it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Fine") {
		t.Errorf("Dispense names the method that is fine: %v", err)
	}
}

// byPointer implements named only through its pointer.
type byPointer struct{}

func (*byPointer) Name() (string, error) { return "p", nil }

// TestDispenseOfAValueWithPointerMethods: a root served as a value whose
// methods have pointer receivers does not have them; Dispense says so and
// what to serve instead, and serving the pointer works.
func TestDispenseOfAValueWithPointerMethods(t *testing.T) {
	client, _ := newPair(t, Options{Roots: map[string]any{"v": byPointer{}, "p": &byPointer{}}}, Options{})
	_, err := Dispense[named](client, "v")
	if want := "missing method Name (its receiver is a pointer: serve a *refbroker.byPointer)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Dispense of the value = %v; want it to say %q", err, want)
	}
	n, err := Dispense[named](client, "p")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := n.Name(); got != "p" || err != nil {
		t.Errorf("Name = %q, %v", got, err)
	}
}
