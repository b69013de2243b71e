package gp

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"time"
)

// Quitting by hanging up: how a host that started its plugin early ends
// it without go-plugin's quit, and loses none of its output.
//
// go-plugin's quit is an RPC on go-plugin's own connection, and at Close
// it is that connection's first message (its net/rpc and gob cold on both
// sides): 0.3–0.5 ms of the plugin's whole life. And it does not keep the
// plugin's last output: what plugin code wrote to stdout or stderr just
// before Close travels from the pipe go-plugin's Serve put there, through
// a goroutine of go-plugin's, to go-plugin's connection, and the plugin
// exiting after the quit can cut that short (1–3 lives in 30 lost a line
// printed just before Close).
//
// So a host that starts its plugin early offers it another way
// (QuitEnv): the host closes the socket, and the plugin, seeing its host
// gone, makes sure go-plugin has sent on what it wrote (FlushOutput) and
// exits; the host waits for the exit, and then for its copies of the
// plugin's stdout and stderr to end (FenceFilter). The plugin accepts by
// writing earlyReadyHangUp instead of earlyReady down the socket; a
// plugin of an older refplug writes earlyReady, and the host quits it
// through go-plugin as before. A plugin whose host did not offer (an older
// host, which sends go-plugin's quit) never writes earlyReadyHangUp.
//
// A host that dies closes the socket too. The plugin tells that apart by
// asking whether its parent is exiting (HostExiting), so the offer is
// made and taken only where that can be asked (CanTellHostExiting: Linux,
// where FlushOutput works too).

// QuitEnv carries, from host to plugin, the offer to quit by hanging up:
// its value is the fence's token (Fence), 16 random bytes in hex.
const QuitEnv = "REFPLUG_QUIT"

// earlyReadyHangUp is earlyReady from a plugin that accepted the offer:
// it exits when its host hangs up, once its output is sent on.
const earlyReadyHangUp byte = 0xE6

// NewQuitToken returns a fresh token for QuitEnv.
func NewQuitToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// Fence is what the plugin writes into its stdout and stderr to tell
// that go-plugin has taken what came before (FlushOutput), and what the
// host removes from them (FenceFilter): NUL, "refplug fence ", the token,
// NUL. It begins with a NUL so that text output never waits on it.
func Fence(token string) []byte {
	return []byte("\x00refplug fence " + token + "\x00")
}

// OfferedHangUp, in the plugin, reads and clears QuitEnv: the fence's
// token, or "" if the host did not offer to quit by hanging up.
func OfferedHangUp() string {
	token := os.Getenv(QuitEnv)
	os.Unsetenv(QuitEnv)
	if len(token) != 32 {
		return ""
	}
	if _, err := hex.DecodeString(token); err != nil {
		return ""
	}
	return token
}

// AcceptHangUp, in the plugin, has the early start (StartEarly,
// StartEarlyPlain) tell the host that this plugin exits when the host
// hangs up (earlyReadyHangUp).
func (s *SocketSlot) AcceptHangUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangUp = true
}

// QuitsOnHangUp reports, in the plugin, whether it serves its host on the
// socket and told it that it exits when the host hangs up.
func (s *SocketSlot) QuitsOnHangUp() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.early && s.hangUp
}

// FlushOutput, in a plugin ending, waits until go-plugin has sent on what
// the plugin wrote to files (its stdout and stderr: the pipes go-plugin's
// Serve put there, which a goroutine of go-plugin's copies to its
// connection, a write at a time): until each pipe is empty, then, with the
// fence written into each, empty again. go-plugin's goroutine reads the
// fence only after it has written everything before it to the
// connection, so that is then on its way to the host, which reads it
// after the plugin has exited. It gives up at the deadline (a host gone
// does not read) and reports whether everything was sent on. Where the
// bytes waiting in a pipe cannot be counted it does nothing and reports
// false.
func FlushOutput(files []*os.File, fence []byte, deadline time.Time) bool {
	if !drained(files, deadline) {
		return false
	}
	for _, f := range files {
		f.SetWriteDeadline(deadline)
		_, err := f.Write(fence)
		f.SetWriteDeadline(time.Time{})
		if err != nil {
			return false
		}
	}
	return drained(files, deadline)
}

// IsPipe reports whether f is a pipe, as go-plugin's stdout and stderr
// are (and a file or terminal the plugin's own code might put in their
// place is not).
func IsPipe(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}

// drained waits until every pipe in files is empty, or the deadline.
func drained(files []*os.File, deadline time.Time) bool {
	pause := 10 * time.Microsecond
	for {
		empty := true
		for _, f := range files {
			n, ok := pipeBuffered(f)
			if !ok {
				return false
			}
			empty = empty && n == 0
		}
		if empty {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Millisecond)
	}
}

// FenceFilter removes the fence from one of the plugin's output streams
// as the host copies it: bytes that could begin a fence are held until
// the next read tells, and given back at the end if they did not.
type FenceFilter struct {
	fence  []byte
	held   []byte
	fenced bool
}

// Fenced reports whether a fence has been taken out of the stream: the
// plugin wrote it as it ended, once go-plugin had taken everything before
// it (FlushOutput).
func (f *FenceFilter) Fenced() bool { return f.fenced }

// NewFenceFilter removes fence (nil: nothing) from a stream.
func NewFenceFilter(fence []byte) *FenceFilter { return &FenceFilter{fence: fence} }

// Pass returns what of p (after what was held) goes on to the writer:
// everything but the fences, and but a tail that may begin one.
func (f *FenceFilter) Pass(p []byte) []byte {
	if len(f.fence) == 0 || len(f.held) == 0 && bytes.IndexByte(p, f.fence[0]) < 0 {
		return p
	}
	b := append(f.held, p...)
	f.held = nil
	if bytes.Contains(b, f.fence) {
		b = bytes.ReplaceAll(b, f.fence, nil)
		f.fenced = true
	}
	for k := min(len(b), len(f.fence)-1); k > 0; k-- {
		if bytes.HasPrefix(f.fence, b[len(b)-k:]) {
			f.held = append([]byte(nil), b[len(b)-k:]...)
			b = b[:len(b)-k]
			break
		}
	}
	return b
}

// End returns what is still held: the stream ended inside no fence.
func (f *FenceFilter) End() []byte {
	b := f.held
	f.held = nil
	return b
}
