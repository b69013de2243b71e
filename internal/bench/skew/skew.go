// Package bench (internal/bench/skew) is internal/bench's Bench served
// with other layouts of Batch and Record: fields reordered and one added
// to each, as a plugin built from a later version of the contract would
// have them. Its package name and type names are internal/bench's, so the
// two meet on the wire; refbench measures refplug decoding by field name
// against it.
package bench

//go:generate go run github.com/refplug/refplug/cmd/refgen -type Item

import (
	"runtime"
	"sync"
)

// Record is internal/bench's Record, reordered, with Note added.
type Record struct {
	Tags  []string
	Score float64
	Note  string
	Name  string
	ID    int64
}

// Batch is internal/bench's Batch, reordered, with Count added.
type Batch struct {
	Records []Record
	Count   int
	Label   string
}

// Item is internal/bench's Item.
type Item interface {
	ID() (int, error)
}

// Memory is internal/bench's Memory.
type Memory struct {
	HeapAlloc uint64
	Held      int
}

// Impl serves Bench with these layouts.
type Impl struct {
	mu   sync.Mutex
	held []Item
}

func (*Impl) Plain(a, b int) (int, error)                   { return a + b, nil }
func (*Impl) Callback(fn func(int) int, n int) (int, error) { return fn(n), nil }

func (*Impl) CallbackN(fn func(int) int, times int) (int, error) {
	v := 0
	for range times {
		v = fn(v)
	}
	return v, nil
}

func (*Impl) Bytes(b []byte) ([]byte, error) { return b, nil }
func (*Impl) Struct(b Batch) (Batch, error)  { return b, nil }

func (*Impl) Fill(dst *Batch) error {
	dst.Label = "filled"
	dst.Records = append(dst.Records[:0], Record{ID: 1, Name: "one", Score: 0.5, Tags: []string{"a"}})
	return nil
}

func (s *Impl) Hold(items []Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, items...)
	return nil
}

func (s *Impl) Drop() error {
	s.mu.Lock()
	s.held = nil
	s.mu.Unlock()
	runtime.GC()
	return nil
}

func (s *Impl) Memory() (Memory, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	defer s.mu.Unlock()
	return Memory{HeapAlloc: ms.HeapAlloc, Held: len(s.held)}, nil
}
