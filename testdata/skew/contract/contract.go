// Package contract is an older version of testdata/contract: same package
// name, so the same type names on the wire, but Counter's methods differ,
// and Wide has no fields.
// testdata/skewplugin is built with it, to test version skew.
package contract

// Counter is the old Counter: Add takes an int64 and there is no Child.
type Counter interface {
	Add(n int64) (int64, error)
	Label() (string, error)
}

type counter struct{ n int64 }

func (c *counter) Add(n int64) (int64, error) { c.n += n; return c.n, nil }
func (c *counter) Label() (string, error)     { return "old", nil }

// Factory hands out counters.
type Factory struct{}

// NewCounter returns an old Counter.
func (Factory) NewCounter(name string) (Counter, error) { return &counter{}, nil }

// Wide is the old Wide: it had no fields, so it crosses in a byte.
type Wide struct{}

// Widener serves Wides from the old Wide.
type Widener struct{}

// Wides returns n old Wides.
func (Widener) Wides(n int) ([]Wide, error) { return make([]Wide, n), nil }
