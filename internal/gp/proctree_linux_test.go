package gp

import (
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// TestAwaitExit: AwaitExit returns once its child has exited and leaves it
// for Wait to reap; while it waits it holds no thread (twenty waits are
// parked in the runtime's poller, not in a system call); and a child
// reaped before the wait began is reported exited at once.
func TestAwaitExit(t *testing.T) {
	const n = 20
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		done  chan error
	}
	kids := make([]child, n)
	for i := range kids {
		cmd := exec.Command("cat") // exits when its stdin closes
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		k := child{cmd, stdin, make(chan error, 1)}
		go func() { k.done <- AwaitExit(k.cmd.Process.Pid) }()
		kids[i] = k
	}
	t.Cleanup(func() {
		for _, k := range kids {
			k.stdin.Close()
			k.cmd.Wait()
		}
	})

	testutil.Eventually(t, "every wait parked in the poller", func() bool {
		buf := make([]byte, 4<<20)
		parked := 0
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "gp.AwaitExit(") && strings.Contains(g, "[IO wait") {
				parked++
			}
		}
		return parked == n
	})
	for i, k := range kids {
		select {
		case err := <-k.done:
			t.Fatalf("AwaitExit for running child %d returned %v", i, err)
		default:
		}
	}

	kids[0].stdin.Close()
	err := testutil.Receive(t, kids[0].done, 10*time.Second, "AwaitExit had not returned 10s after its child's exit")
	if err != nil {
		t.Fatalf("AwaitExit = %v", err)
	}
	if err := kids[0].cmd.Wait(); err != nil {
		t.Fatalf("Wait after AwaitExit = %v; want the child left to reap, exited 0", err)
	}

	// Reaped before the wait began.
	reaped := exec.Command("true")
	if err := reaped.Run(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- AwaitExit(reaped.Process.Pid) }()
	err = testutil.Receive(t, done, 10*time.Second, "AwaitExit of a reaped child had not returned after 10s")
	if err != nil {
		t.Fatalf("AwaitExit of a reaped child = %v", err)
	}

	for _, k := range kids[1:] {
		k.stdin.Close()
		err := testutil.Receive(t, k.done, 10*time.Second, "AwaitExit had not returned 10s after its child's exit")
		if err != nil {
			t.Fatalf("AwaitExit = %v", err)
		}
	}
}

// TestHostExiting: a running process is not exiting; one killed is, from
// the moment its closed pipe is seen (the kernel closes a dying process's
// files after marking it exiting), as a zombie not yet reaped, and once
// gone. And AwaitExit of a process that exited before the wait began
// returns at once (it waited forever in about one run in a hundred: the
// poller forgot the pidfd's readiness).
func TestHostExiting(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if HostExiting(pid) {
		t.Error("HostExiting of a running process = true")
	}
	cmd.Process.Kill()
	closed := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, stdout); closed <- err }() // until the dying process's end is closed
	testutil.Receive(t, closed, 10*time.Second, "the killed process's pipe to close")
	if !HostExiting(pid) {
		t.Error("HostExiting of a killed process whose files are closed = false")
	}
	awaited := make(chan error, 1)
	go func() { awaited <- AwaitExit(pid) }() // it has exited already: at once
	if err := testutil.Receive(t, awaited, 10*time.Second, "AwaitExit of a process that had exited before it began"); err != nil {
		t.Fatal(err)
	}
	if !HostExiting(pid) {
		t.Error("HostExiting of a zombie = false")
	}
	cmd.Wait()
	if !HostExiting(pid) {
		t.Error("HostExiting of a reaped process = false")
	}
}
