// Package shapes holds every method shape refgen must handle; its
// refplug_proxies.go is refgen's golden output.
package shapes

import (
	"context"
	"io"
	"time"

	gocontext "context"
)

//go:generate go run github.com/refplug/refplug/cmd/refgen

// Item is plain data.
type Item struct {
	Name string
	At   time.Time
}

// Store exercises the method shapes.
type Store interface {
	Ping()
	Close() error
	Get(key string) ([]byte, error)
	Size() int
	Pair(a, b int) (int, string)
	Named(ctx context.Context, key string) (item Item, found bool, err error)
	Lookup(key string) (value string, ok bool)
	Put(ctx gocontext.Context, items ...Item) error
	Watch(key string, onChange func(Item) error) (Watcher, error)
	Each(fn func(string) bool)
	Invoke(method string) error
	String() string
	Listener
	io.Writer
}

// Listener is embedded in Store.
type Listener interface {
	Notify(topic string, payload []byte) error
}

// Watcher is returned by Store.Watch.
type Watcher interface {
	Stop() error
}

// Reffy has a method named Ref, so its proxy embeds *refbroker.Handle.
type Reffy interface {
	Ref() (string, error)
	Handle2(p int) (int, error)
}

type unexported interface{ Do() error }

// Constraint is a type constraint, skipped.
type Constraint interface{ ~int | ~string }

// Generic is generic: skipped itself, but the instantiations the other
// interfaces use (Generic[int], Generic[Item], Generic[[]*time.Time], and
// Generic[Generic[string]], which a method of Generic[Generic[string]]
// reaches in turn) get proxies.
type Generic[T any] interface{ Get() (T, error) }

// Page is a generic data type: its instantiation Page[Item], which
// Generics uses, is registered to travel in an any.
type Page[T any] struct {
	Items []T
	Next  string
}

// Generics uses instantiations of Generic, and of Page.
type Generics interface {
	List() (Page[Item], error)
	Ints() (Generic[int], error)
	Items(of Generic[Item]) error
	Times(func(Generic[[]*time.Time]) error) error
	Nested() (map[string]Generic[Generic[string]], error)
}

// Empty has no methods, skipped.
type Empty interface{}

var _ unexported

// Download is a reader of a contract's own: its proxy gets a WriteTo, so
// that io.Copy from it reads a megabyte a round trip.
type Download interface {
	io.ReadCloser
	Name() (string, error)
}

// Tape has io.Reader's Read and a WriteTo of its own: its proxy forwards
// that one.
type Tape interface {
	Read(p []byte) (int, error)
	WriteTo(w io.Writer) (int64, error)
}

// Records has a Read that is not io.Reader's: no WriteTo.
type Records interface {
	Read(p []byte) int
}

// Upload is a writer of a contract's own: its proxy gets a ReadFrom, so
// that io.Copy into it writes a megabyte a round trip.
type Upload interface {
	io.WriteCloser
	Done() (int64, error)
}
