package gp

import (
	"net"
	"strings"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/yamux"
	"github.com/refplug/refplug/internal/testutil"
)

// TestRouteYamuxLog: RouteYamuxLog finds the yamux session under a
// go-plugin RPC client and sends what it logs to the writer given, without
// the standard logger's date. It fails on a go-plugin or yamux that no
// longer lays its fields out as RouteYamuxLog expects.
func TestRouteYamuxLog(t *testing.T) {
	rc, b := mutePluginServer(t)
	var logs testutil.Buffer
	if !RouteYamuxLog(rc, &logs) {
		t.Fatal("RouteYamuxLog did not find go-plugin's yamux session's logger")
	}
	// A frame of another protocol version: the client's session logs it.
	b.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Write([]byte{9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the session's complaint to reach the writer", func() bool {
		return strings.Contains(logs.String(), "[ERR] yamux: Invalid protocol version: 9")
	})
	if line := logs.String(); !strings.HasPrefix(line, "[ERR] yamux:") {
		t.Errorf("the session's line = %q; want it without a date (the host's logger adds its own)", line)
	}
	if RouteYamuxLog(nil, &logs) {
		t.Error("RouteYamuxLog(nil) reports it routed something")
	}
}

// TestCloseSession: CloseSession ends a go-plugin call that waits on a
// server which never answers. It fails on a go-plugin that no longer lays
// its fields out as CloseSession expects.
func TestCloseSession(t *testing.T) {
	rc, _ := mutePluginServer(t)
	done := make(chan error, 1)
	go func() { done <- rc.Ping() }()
	select {
	case err := <-done:
		t.Fatalf("Ping of a server that never answers returned %v", err)
	case <-time.After(50 * time.Millisecond): // it waits (not what synchronises: the close below is)
	}
	if !CloseSession(rc) {
		t.Fatal("CloseSession did not find go-plugin's yamux session")
	}
	if err := testutil.Receive(t, done, 5*time.Second, "Ping still waits after CloseSession"); err == nil {
		t.Error("Ping through a closed session succeeded")
	}
	if CloseSession(nil) {
		t.Error("CloseSession(nil) reports it closed something")
	}
}

// mutePluginServer returns a go-plugin RPC client connected through a
// pipe to a yamux server that accepts its streams (go-plugin's client
// opens its control and stdio streams) and never answers on them, and
// the server's end of the pipe.
func mutePluginServer(t *testing.T) (*goplugin.RPCClient, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	server, err := yamux.Server(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, err := server.Accept(); err != nil {
				return
			}
		}
	}()
	rc, err := goplugin.NewRPCClient(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rc, b
}
