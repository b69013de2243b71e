// Package testutil holds the helpers refplug's tests share: polling with a
// deadline, a logger that writes to the test's log, and a buffer that
// goroutines may write to while the test reads it.
package testutil

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Eventually polls cond, collecting garbage between polls (so released
// proxies are seen), until it holds or 10 seconds pass, and then fails the
// test naming what it waited for. Call it from the test's goroutine.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

// Receive returns the next value from ch, or fails the test with failure
// if none comes within d. Call it from the test's goroutine.
func Receive[T any](t testing.TB, ch <-chan T, d time.Duration, failure string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatal(failure)
		panic("unreachable") // Fatal does not return
	}
}

// HeapAfterGC returns the heap in use after two garbage collections (the
// second frees what sync.Pools kept through the first).
func HeapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Logger returns an hclog logger named name that writes warnings and
// errors to t's log.
func Logger(t testing.TB, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Warn, Output: Writer{t}})
}

// Writer writes each line it is given to a test's log.
type Writer struct{ T testing.TB }

func (w Writer) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Buffer collects what goroutines write (a logger's output, a plugin's
// stderr) for the test to read while they may still be writing.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
