package refbroker_test

import (
	"fmt"
	"net"
	"strings"

	"github.com/refplug/refplug/refbroker"
)

// Greeter is a contract: both sides compile against it.
type Greeter interface {
	Greet(name string, decorate func(string) string) (string, error)
}

// greeterProxy forwards each method through the embedded *Ref.
type greeterProxy struct{ *refbroker.Ref }

func (p greeterProxy) Greet(name string, decorate func(string) string) (string, error) {
	var s string
	err := p.Invoke("Greet", []any{name, decorate}, &s)
	return s, err
}

func init() {
	refbroker.RegisterInterface[Greeter](func(r *refbroker.Ref) Greeter { return greeterProxy{r} })
}

type greeter struct{}

func (greeter) Greet(name string, decorate func(string) string) (string, error) {
	return decorate("hello, " + name), nil // calls back into the other side
}

// Two Conns over an in-memory pipe: one serves a Greeter, the other
// dispenses it and passes a func that the server calls back.
func ExampleDispense() {
	a, b := net.Pipe()
	server := refbroker.NewConn(a, refbroker.Options{Roots: map[string]any{"greeter": greeter{}}})
	defer server.Close()
	client := refbroker.NewConn(b, refbroker.Options{})
	defer client.Close()

	g, err := refbroker.Dispense[Greeter](client, "greeter")
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := g.Greet("gopher", strings.ToUpper)
	fmt.Println(s, err)
	// Output: HELLO, GOPHER <nil>
}

// Decorator is an interface the caller passes; the callee calls it back.
type Decorator interface {
	Decorate(s string) (string, error)
}

type decoratorProxy struct{ *refbroker.Ref }

func (p decoratorProxy) Decorate(s string) (string, error) {
	var out string
	err := p.Invoke("Decorate", []any{s}, &out)
	return out, err
}

// Framer is served by one side and takes a Decorator from the other.
type Framer interface {
	Frame(word string, d Decorator) (string, error)
}

type framerProxy struct{ *refbroker.Ref }

func (p framerProxy) Frame(word string, d Decorator) (string, error) {
	var out string
	err := p.Invoke("Frame", []any{word, d}, &out)
	return out, err
}

func init() {
	refbroker.RegisterInterface[Decorator](func(r *refbroker.Ref) Decorator { return decoratorProxy{r} })
	refbroker.RegisterInterface[Framer](func(r *refbroker.Ref) Framer { return framerProxy{r} })
}

type framer struct{}

func (framer) Frame(word string, d Decorator) (string, error) {
	s, err := d.Decorate(word) // a call back to the side that passed d
	return "[" + s + "]", err
}

type stars struct{}

func (stars) Decorate(s string) (string, error) { return "*" + s + "*", nil }

// Every interface that crosses needs its proxy registered, on both sides
// (cmd/refgen writes them). Here the Decorator passed to Frame arrives on
// the serving side as a decoratorProxy.
func ExampleRegisterInterface() {
	a, b := net.Pipe()
	server := refbroker.NewConn(a, refbroker.Options{Roots: map[string]any{"framer": framer{}}})
	defer server.Close()
	client := refbroker.NewConn(b, refbroker.Options{})
	defer client.Close()

	f, err := refbroker.Dispense[Framer](client, "framer")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Frame("go", stars{}))
	// Output: [*go*] <nil>
}

// AppError is an error type that some APIs return as a method's last
// result instead of error.
type AppError struct{ Status int }

func (e *AppError) Error() string { return fmt.Sprintf("status %d", e.Status) }

// Accounts returns its failures as *AppError.
type Accounts interface {
	Balance(id string) (int, *AppError)
}

type accountsProxy struct{ *refbroker.Ref }

func (p accountsProxy) Balance(id string) (int, *AppError) {
	var n int
	var ae *AppError
	if err := p.Invoke("Balance", []any{id}, &n, &ae); err != nil {
		p.LogFailure("Balance", err)
	}
	return n, ae
}

func init() {
	refbroker.RegisterInterface[Accounts](func(r *refbroker.Ref) Accounts { return accountsProxy{r} })
	refbroker.RegisterFailure(func(err error) *AppError { return &AppError{Status: 500} })
}

type accounts struct{}

func (accounts) Balance(id string) (int, *AppError) { panic("the ledger is down") }

// RegisterFailure says how a call that fails before its results arrive
// (here, a panic on the far side) builds the error-like result, so that
// callers who check only *AppError never read nil as success.
func ExampleRegisterFailure() {
	a, b := net.Pipe()
	server := refbroker.NewConn(a, refbroker.Options{Roots: map[string]any{"accounts": accounts{}}})
	defer server.Close()
	client := refbroker.NewConn(b, refbroker.Options{})
	defer client.Close()

	acc, err := refbroker.Dispense[Accounts](client, "accounts")
	if err != nil {
		fmt.Println(err)
		return
	}
	n, ae := acc.Balance("x")
	fmt.Println(n, ae)
	// Output: 0 status 500
}
