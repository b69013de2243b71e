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
