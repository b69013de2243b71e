// Package refused holds an interface whose methods cannot cross, one way
// each, for refgen's refusal at generation time.
package refused

import (
	"context"
	"net/http"
	"time"
	"unsafe"
)

// Opaque has only unexported fields.
type Opaque struct{ n int }

// Doc holds a channel deep inside.
type Doc struct {
	Parts []struct{ C chan string }
}

// Thing is an interface, fine as a map value but not as a key.
type Thing interface{ Name() string }

// Bad has a problem in every method but Fine and FineHTTP (an
// *http.Request crosses through refbroker's converter, though its fields
// hold a channel and funcs).
type Bad interface {
	Watch(c chan int) error
	Late(key string, ctx context.Context) error
	Keys(m map[Thing]int) error
	Hidden() (Opaque, error)
	Deep(d Doc) error
	Ptr(p unsafe.Pointer) error
	Callback(fn func(chan bool)) error
	Fine(ctx context.Context, t time.Time, things map[string]Thing) error
	FineHTTP(w http.ResponseWriter, r *http.Request)
}
