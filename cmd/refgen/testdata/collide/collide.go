// Package collide has names that generated code must not shadow.
package collide

import "time"

// p, err and r0 are package-level names the generated code must avoid.
var p, err, r0 = 1, 2, 3

// HTTPClient has parameters named after packages it uses.
type HTTPClient interface {
	// time shadows the time package, whose type the next parameter uses.
	At(time int, when time.Time) (time.Duration, error)
	Do(refbroker string, a0 ...int) (int, error)
}
