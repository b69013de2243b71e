package gp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// TestGuardRefusesOtherProcesses: the guard's socket takes go-plugin's
// connection from this process only; another process of the same user
// that connects first is hung up on, and this one's still gets through.
func TestGuardRefusesOtherProcesses(t *testing.T) {
	if addr := os.Getenv("REFPLUG_GUARD_ADDR"); addr != "" { // the other process
		c, err := net.Dial("unix", addr)
		if err != nil {
			os.Stdout.WriteString("dial: " + err.Error())
			return
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(frame(yamuxPing, yamuxSYN, 0, 1))
		// Hung up on: EOF, or a reset (the ping unread when it was closed).
		n, err := c.Read(make([]byte, 12))
		if n == 0 && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
			os.Stdout.WriteString("hung up on")
		} else {
			fmt.Fprintf(os.Stdout, "answered: %d bytes, %v", n, err)
		}
		return
	}
	addr := pluginListener(t, yamuxServer(t, func(s *yamux.Session) { <-s.CloseChan() }))
	g, err := NewGuard(addr, nil, 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGuardRefusesOtherProcesses$")
	cmd.Env = append(os.Environ(), "REFPLUG_GUARD_ADDR="+g.Addr().String())
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "hung up on") {
		t.Fatalf("another process connecting to the guard: %q, %v; want it hung up on", out, err)
	}
	c, err := net.Dial("unix", g.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	host, err := yamux.Client(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.Ping(); err != nil {
		t.Fatalf("this process's connection after the other's: %v", err)
	}
}
