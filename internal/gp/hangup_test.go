//go:build unix

package gp

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStartEarlyQuitByHangingUp: the offer to quit by hanging up is
// taken only when made, and said with the mark: a plugin that accepted it
// gives the host a connection marked HangUp; one that did not (an older
// refplug, or a host that made no offer) the usual early connection; and a
// host that made no offer refuses the accepting mark.
func TestStartEarlyQuitByHangingUp(t *testing.T) {
	token, err := NewQuitToken()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		offer, accept bool
		hangUp        bool
		refused       bool
	}{
		{"offered and accepted", true, true, true, false},
		{"offered, an older plugin", true, false, false, false},
		{"not offered", false, false, false, false},
		{"accepted though not offered", false, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostSide, _, slot := earlyPair(t)
			if tc.offer {
				hostSide.QuitToken = token
			}
			if tc.accept {
				slot.AcceptHangUp()
			}
			started, goPluginServes := startPlugin(t, slot, map[int]*Plugin{1: {Roots: map[string]any{"g": greeter{}}}})
			defer goPluginServes()
			c, err := hostSide.StartEarly(1, nil)
			if tc.refused {
				if c != nil || err == nil || !strings.Contains(err.Error(), "did not offer") {
					t.Fatalf("StartEarly = %v, %v; want the mark refused", c, err)
				}
				return
			}
			if err != nil || c == nil {
				t.Fatalf("StartEarly = %v, %v", c, err)
			}
			defer c.Conn.Close()
			if c.HangUp != tc.hangUp {
				t.Errorf("HangUp = %v; want %v", c.HangUp, tc.hangUp)
			}
			if got := slot.QuitsOnHangUp(); got != tc.accept {
				t.Errorf("the plugin's QuitsOnHangUp = %v; want %v", got, tc.accept)
			}
			if r := awaitStart(t, started); r.err != nil {
				t.Fatal(r.err)
			}
		})
	}
}

// TestOfferedHangUp: the plugin takes a well-formed token from QuitEnv,
// and clears it so that its own children do not see it.
func TestOfferedHangUp(t *testing.T) {
	token, _ := NewQuitToken()
	for _, tc := range []struct{ env, want string }{{token, token}, {"", ""}, {"1", ""}, {strings.Repeat("z", 32), ""}} {
		t.Setenv(QuitEnv, tc.env)
		if got := OfferedHangUp(); got != tc.want {
			t.Errorf("OfferedHangUp with %q = %q; want %q", tc.env, got, tc.want)
		}
		if _, set := os.LookupEnv(QuitEnv); set {
			t.Errorf("%s is still set", QuitEnv)
		}
	}
}

// TestFenceFilter: the fence is taken out of a stream however the reads
// cut it, and nothing else is: NULs and a fence's beginning that the
// stream does not complete reach the writer, in order.
func TestFenceFilter(t *testing.T) {
	token, _ := NewQuitToken()
	fence := Fence(token)
	other := Fence(strings.Repeat("0", 32))
	for _, tc := range []struct{ name, in, want string }{
		{"text", "hello\nworld\n", "hello\nworld\n"},
		{"fence at the end", "last line\n" + string(fence), "last line\n"},
		{"fences anywhere", string(fence) + "a" + string(fence) + string(fence) + "b\n", "ab\n"},
		{"NULs", "a\x00b\x00\x00", "a\x00b\x00\x00"},
		{"another fence", "x" + string(other), "x" + string(other)},
		{"a fence cut short", "x" + string(fence[:len(fence)-1]), "x" + string(fence[:len(fence)-1])},
		{"a fence's beginning, then a fence", string(fence[:5]) + string(fence) + "y", string(fence[:5]) + "y"},
	} {
		for size := 1; size <= len(tc.in); size++ {
			f := NewFenceFilter(fence)
			var out bytes.Buffer
			for in := tc.in; in != ""; {
				n := min(size, len(in))
				out.Write(f.Pass([]byte(in[:n])))
				in = in[n:]
			}
			out.Write(f.End())
			if out.String() != tc.want {
				t.Fatalf("%s, read %d bytes at a time: %q; want %q", tc.name, size, out.String(), tc.want)
			}
		}
	}
	if got := NewFenceFilter(nil).Pass(fence); !bytes.Equal(got, fence) {
		t.Errorf("a filter without a fence changed %q to %q", fence, got)
	}
}

// TestFlushOutput: FlushOutput returns once a copier like go-plugin's
// (a read, then a write of what it read to the connection) has written
// everything written to the pipe before it, and gives up at the deadline
// when nothing reads the pipe.
func TestFlushOutput(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the bytes waiting in a pipe are counted on Linux only; FlushOutput does nothing elsewhere")
	}
	token, _ := NewQuitToken()
	fence := Fence(token)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	// The copier writes slowly, as a connection under load, so that the
	// last write is still under way when the pipe is empty.
	var mu sync.Mutex
	var sent bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				time.Sleep(20 * time.Millisecond)
				mu.Lock()
				sent.Write(buf[:n])
				mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	// More than a pipe holds: the write returns once the copier has
	// taken all but the last pipeful, as a method's print would.
	data := strings.Repeat("output line\n", 20000)
	if _, err := w.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if !FlushOutput([]*os.File{w}, fence, time.Now().Add(time.Minute)) {
		t.Fatal("FlushOutput gave up")
	}
	mu.Lock()
	got := string(NewFenceFilter(fence).Pass(sent.Bytes()))
	mu.Unlock()
	if got != data {
		t.Fatalf("when FlushOutput returned, %d bytes of %d had been sent on", len(got), len(data))
	}

	if !IsPipe(w) {
		t.Error("IsPipe of a pipe = false")
	}
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if IsPipe(file) {
		t.Error("IsPipe of a file = true")
	}

	// Nobody reads: FlushOutput gives up at its deadline.
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	defer w2.Close()
	w2.Write([]byte("unread"))
	if FlushOutput([]*os.File{w2}, fence, time.Now().Add(50*time.Millisecond)) {
		t.Error("FlushOutput reported the output sent on with nobody reading it")
	}
	var rest bytes.Buffer
	w2.Close()
	io.Copy(&rest, r2)
	if rest.String() != "unread" {
		t.Errorf("a flush that gave up wrote %q into the pipe; want only what was there", rest.String())
	}
}
