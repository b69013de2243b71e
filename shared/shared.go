// Package shared is the contract between the example host (cmd/host) and
// the example plugin (cmd/example-plugin): a small full-text indexer.
//
// It shows each way a value crosses: plain structs by value, a host func
// passed as a progress callback, a host interface (Source) the plugin asks
// for documents, an object returned by the plugin (Index), an object
// returned by that object's method (Cursor), a sentinel error checked with
// errors.Is, and contexts whose deadline and cancellation reach the plugin.
package shared

//go:generate go run github.com/refplug/refplug/cmd/refgen

import (
	"context"
	"errors"
	"time"

	"github.com/refplug/refplug/refbroker"
)

// ErrNoSuchDoc is returned (wrapped) by Index.Get for an unknown path.
var ErrNoSuchDoc = errors.New("shared: no such document")

// Document is a text the host owns. It crosses by value.
type Document struct {
	Path     string
	Title    string
	Body     string
	Modified time.Time
	Tags     []string
}

// Hit is one search result.
type Hit struct {
	Path    string
	Score   float64
	Snippet string
}

// IndexStats describes an index.
type IndexStats struct {
	Documents int
	Terms     int
}

// Source is implemented by the host: the plugin pulls documents from it.
type Source interface {
	List() ([]string, error)
	Open(path string) (Document, error)
}

// Indexer is the root object the plugin serves as "indexer".
type Indexer interface {
	// Name describes the plugin.
	Name() (string, error)
	// Build reads every document src lists into a new Index, calling
	// progress after each. It stops with ctx's error when ctx ends.
	Build(ctx context.Context, src Source, progress func(done, total int)) (Index, error)
}

// Index is an object the plugin returns from Build.
type Index interface {
	Stats() (IndexStats, error)
	// Search returns a Cursor over the documents that contain every word of
	// query, best first.
	Search(ctx context.Context, query string) (Cursor, error)
	// Get returns an indexed document; an unknown path wraps ErrNoSuchDoc.
	Get(path string) (Document, error)
}

// Cursor walks search results. It is an object returned by Index.Search.
type Cursor interface {
	// Next returns the next hit, or ok == false at the end.
	Next() (hit Hit, ok bool, err error)
	Close() error
}

func init() {
	refbroker.RegisterError(ErrNoSuchDoc)
}
