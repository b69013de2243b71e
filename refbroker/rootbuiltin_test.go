package refbroker

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"testing/iotest"
)

// file is a root that is every built-in stream at once: reads, seeks and
// ReadAt over data, Write appending to written, Close counted.
type file struct {
	*bytes.Reader
	mu      sync.Mutex
	written bytes.Buffer
	closed  int
}

func (f *file) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written.Write(p)
}

func (f *file) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

// TestDispenseBuiltinRoots: a root object dispensed as a built-in
// interface works as one passed at that type does. io.Reader and its kin
// cross with other methods than their own (ReadAtMost, ReadSpan:
// builtin.go), which a root, exported as itself, lacked: Dispense
// succeeded and every Read failed ("has no method ReadAtMost").
func TestDispenseBuiltinRoots(t *testing.T) {
	data := pattern(5000)
	newFile := func() *file { return &file{Reader: bytes.NewReader(data)} }
	for name, dispense := range map[string]func(*Conn) (io.Reader, error){
		"io.Reader":     func(c *Conn) (io.Reader, error) { return Dispense[io.Reader](c, "f") },
		"io.ReadSeeker": func(c *Conn) (io.Reader, error) { return Dispense[io.ReadSeeker](c, "f") },
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := testPair(t, map[string]any{"f": newFile()})
			r, err := dispense(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := iotest.TestReader(r, data); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("io.ReaderAt", func(t *testing.T) {
		c, _ := testPair(t, map[string]any{"f": newFile()})
		r, err := Dispense[io.ReaderAt](c, "f")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.NewSectionReader(r, 100, 1000))
		if err != nil || !bytes.Equal(got, data[100:1100]) {
			t.Errorf("a section read through ReadAt: %d bytes, %v; want data[100:1100]", len(got), err)
		}
	})
	t.Run("io.ReadWriteCloser", func(t *testing.T) {
		f := newFile()
		c, _ := testPair(t, map[string]any{"f": f})
		rw, err := Dispense[io.ReadWriteCloser](c, "f")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rw)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("ReadAll: %d bytes, %v; want %d", len(got), err, len(data))
		}
		if n, err := io.Copy(rw, strings.NewReader("written")); n != 7 || err != nil {
			t.Errorf("io.Copy into it: %d, %v", n, err)
		}
		if err := rw.Close(); err != nil {
			t.Error(err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.written.String() != "written" || f.closed != 1 {
			t.Errorf("the root has %q written and %d closes; want \"written\" and 1", f.written.String(), f.closed)
		}
	})
	t.Run("fs.FS", func(t *testing.T) {
		fsys := fstest.MapFS{"a.txt": {Data: []byte("A")}, "dir/b.txt": {Data: data}}
		c, _ := testPair(t, map[string]any{"fs": fsys})
		for _, dispense := range []func() (fs.FS, error){
			func() (fs.FS, error) { return Dispense[fs.FS](c, "fs") },
			func() (fs.FS, error) { return Dispense[fs.ReadFileFS](c, "fs") },
		} {
			remote, err := dispense()
			if err != nil {
				t.Fatal(err)
			}
			if err := fstest.TestFS(remote, "a.txt", "dir/b.txt"); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("http.Handler", func(t *testing.T) {
		c, _ := testPair(t, map[string]any{"h": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hi "+r.URL.Path)
		})})
		h, err := Dispense[http.Handler](c, "h")
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		if rec.Body.String() != "hi /x" {
			t.Errorf("body %q", rec.Body.String())
		}
	})
}

// TestDispenseBuiltinRootMismatch: a root that is not the built-in
// interface asked for is refused by Dispense, naming what it lacks of
// that interface (not of the methods it crosses with).
func TestDispenseBuiltinRootMismatch(t *testing.T) {
	c, _ := testPair(t, map[string]any{"h": http.NotFoundHandler(), "w": io.Discard})
	_, err := Dispense[io.ReadSeeker](c, "h")
	if err == nil || !strings.Contains(err.Error(), "does not implement io.ReadSeeker: missing method Read; missing method Seek") {
		t.Errorf("Dispense[io.ReadSeeker] of an http.Handler: %v", err)
	}
	_, err = Dispense[io.ReadCloser](c, "w")
	if err == nil || !strings.Contains(err.Error(), "does not implement io.ReadCloser: missing method Close; missing method Read") {
		t.Errorf("Dispense[io.ReadCloser] of io.Discard: %v", err)
	}
}

// TestWireAsked: a Dispense is taken as a built-in proxy's only if it asks
// for each of the wire interface's methods once, with its signature: a
// peer that names one twice in place of another does not get the other.
func TestWireAsked(t *testing.T) {
	w := reflect.TypeFor[readCloserWire]()
	read, closer := [2]string{"ReadAtMost", "func(int) ([]uint8, error)"}, [2]string{"Close", "func() error"}
	for _, tc := range []struct {
		want [][2]string
		ok   bool
	}{
		{[][2]string{read, closer}, true},
		{[][2]string{closer, read}, true},
		{[][2]string{read, read}, false},
		{[][2]string{read}, false},
		{[][2]string{read, {"Close", "func() string"}}, false},
		{[][2]string{{"Read", "func([]uint8) (int, error)"}, closer}, false},
	} {
		if got := wireAsked(w, tc.want); got != tc.ok {
			t.Errorf("wireAsked(%v) = %v; want %v", tc.want, got, tc.ok)
		}
	}
}
