// Package contract is version 2 of the evolution tests' contract: Record
// gains Owner and Point gains Z, Size moves first and widens to int64,
// and Store gains Count. All compatible with version 1.
package contract

//go:generate go run github.com/refplug/refplug/cmd/refgen -type Basic,Store

import (
	"fmt"
	"sync"
)

// Point is nested data.
type Point struct{ X, Y, Z int }

// Record is what the store keeps.
type Record struct {
	Size  int64
	ID    string
	Tags  []string
	Owner string
	Loc   *Point
	Ps    []Point
	Small int64
}

// Note crosses only inside an any: its layout is checked when it first
// arrives. The plugin registers it as "evolve.Note" (a host linking
// several versions registers one). Version 2 adds Author.
type Note struct {
	Author string
	Text   string
	Stars  int
}

// Basic is what every version serves.
type Basic interface {
	Put(r Record) (Record, error)
	Get(id string) (Record, error)
	View(r Record) (string, error)
	// Echo returns v as it was received.
	Echo(v any) (any, error)
}

// Store is version 2's whole interface.
type Store interface {
	Basic
	Count() (int, error)
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

func (s *store) Count() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records), nil
}
