// Package contract is version 1 of the evolution tests' contract
// (testdata/evolve): the same package name in every version, so the same
// type names on the wire, as a contract released three times would have.
package contract

//go:generate go run github.com/refplug/refplug/cmd/refgen -type Basic,Store

import (
	"fmt"
	"sync"
)

// Point is nested data.
type Point struct{ X, Y int }

// Record is what the store keeps.
type Record struct {
	ID    string
	Size  int
	Tags  []string
	Loc   *Point
	Ps    []Point
	Small int8
}

// Note crosses only inside an any: its layout is checked when it first
// arrives. The plugin registers it as "evolve.Note" (a host linking
// several versions registers one).
type Note struct {
	Text  string
	Stars string
}

// Basic is what every version serves.
type Basic interface {
	Put(r Record) (Record, error)
	Get(id string) (Record, error)
	View(r Record) (string, error)
	// Echo returns v as it was received.
	Echo(v any) (any, error)
}

// Store is version 1's whole interface.
type Store interface {
	Basic
}

// NewStore returns the store this version's plugin serves.
func NewStore() Store { return &store{records: map[string]Record{}} }

type store struct {
	mu      sync.Mutex
	records map[string]Record
}

func (s *store) Put(r Record) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[r.ID] = r
	return r, nil
}

func (s *store) Get(id string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records[id], nil
}

func (s *store) View(r Record) (string, error) { return fmt.Sprintf("%+v", r), nil }

func (s *store) Echo(v any) (any, error) { return v, nil }
