// Command example-plugin is refplug's example plugin: a small full-text
// indexer that implements shared.Indexer. The host starts it; run by hand
// it only says it is a plugin.
package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/shared"
)

func main() {
	plugin.Serve(map[string]any{"indexer": &indexer{}})
}

type indexer struct{}

func (*indexer) Name() (string, error) { return "toy full-text indexer 1.0", nil }

// Build pulls every document from the host's Source, reporting progress
// through the host's callback, and stops when the host's context ends.
func (*indexer) Build(ctx context.Context, src shared.Source, progress func(done, total int)) (shared.Index, error) {
	paths, err := src.List()
	if err != nil {
		return nil, fmt.Errorf("listing documents: %w", err)
	}
	ix := &index{docs: make(map[string]shared.Document), postings: make(map[string]map[string]int)}
	for i, p := range paths {
		if err := ctx.Err(); err != nil {
			plugin.Logger().Info("build stopped by the host", "indexed", i, "of", len(paths), "reason", err)
			return nil, err
		}
		doc, err := src.Open(p)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", p, err)
		}
		ix.add(doc)
		if progress != nil {
			progress(i+1, len(paths))
		}
	}
	return ix, nil
}

type index struct {
	mu       sync.RWMutex
	docs     map[string]shared.Document
	postings map[string]map[string]int // word -> path -> count
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
}

func (ix *index) add(doc shared.Document) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.docs[doc.Path] = doc
	for _, w := range words(doc.Title + " " + doc.Body) {
		if ix.postings[w] == nil {
			ix.postings[w] = make(map[string]int)
		}
		ix.postings[w][doc.Path]++
	}
}

func (ix *index) Stats() (shared.IndexStats, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return shared.IndexStats{Documents: len(ix.docs), Terms: len(ix.postings)}, nil
}

func (ix *index) Get(path string) (shared.Document, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d, ok := ix.docs[path]
	if !ok {
		return shared.Document{}, fmt.Errorf("get %s: %w", path, shared.ErrNoSuchDoc)
	}
	return d, nil
}

// Search scores documents by how often they contain the query's words.
func (ix *index) Search(ctx context.Context, query string) (shared.Cursor, error) {
	if dl, ok := ctx.Deadline(); ok {
		plugin.Logger().Debug("search with a deadline", "query", query, "deadline", dl)
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	qs := words(query)
	scores := make(map[string]float64)
	for i, w := range qs {
		for path, n := range ix.postings[w] {
			if i == 0 || scores[path] > 0 {
				scores[path] += float64(n)
			}
		}
		for path := range scores {
			if ix.postings[w][path] == 0 {
				delete(scores, path)
			}
		}
	}
	hits := make([]shared.Hit, 0, len(scores))
	for path, s := range scores {
		hits = append(hits, shared.Hit{Path: path, Score: s, Snippet: snippet(ix.docs[path].Body, qs)})
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].Path < hits[j].Path
	})
	return &cursor{hits: hits}, nil
}

func snippet(body string, qs []string) string {
	lower := strings.ToLower(body)
	for _, q := range qs {
		if i := strings.Index(lower, q); i >= 0 {
			// Widen to whole words around the match.
			start := strings.LastIndexByte(body[:max(0, i-15)], ' ') + 1
			end := len(body)
			if j := strings.IndexByte(body[min(len(body), i+len(q)+15):], ' '); j >= 0 {
				end = i + len(q) + 15 + j
			}
			s := body[start:end]
			if start > 0 {
				s = "…" + s
			}
			if end < len(body) {
				s += "…"
			}
			return s
		}
	}
	return ""
}

type cursor struct {
	mu   sync.Mutex
	hits []shared.Hit
}

func (c *cursor) Next() (shared.Hit, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.hits) == 0 {
		return shared.Hit{}, false, nil
	}
	h := c.hits[0]
	c.hits = c.hits[1:]
	return h, true, nil
}

func (c *cursor) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hits = nil
	return nil
}
