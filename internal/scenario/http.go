package scenario

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/testdata/contract"
)

// HTTP: a plugin's http.Handler (testdata/contract.NewWeb), dispensed and
// put behind a real HTTP server on this side, answers real HTTP clients:
// method, query, headers, status and body both ways, a streamed and
// flushed response, and a client's cancellation reaching the plugin's
// request context.
func HTTP(t *testing.T, h http.Handler) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/echo?q=question", strings.NewReader(strings.Repeat("b", 100_000)))
	req.Header.Set("X-Client", "client")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "echo POST question client " + strings.Repeat("b", 100_000)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Plugin") != "yes" || string(body) != want {
		t.Errorf("POST /echo = %d, X-Plugin %q, %d bytes of body (%.40q…); want 201, yes, %d bytes", resp.StatusCode, resp.Header.Get("X-Plugin"), len(body), body, len(want))
	}

	// A file through http.ServeContent (io.Copy into the writer): whole,
	// and a range of it.
	resp, err = http.Get(srv.URL + "/file")
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, contract.FileBytes) || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("GET /file = %d, %d bytes (%v), Content-Type %q; want 200, the file's %d bytes, application/octet-stream", resp.StatusCode, len(body), err, resp.Header.Get("Content-Type"), len(contract.FileBytes))
	}
	req, _ = http.NewRequest("GET", srv.URL+"/file", nil)
	req.Header.Set("Range", "bytes=1000000-2999999")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, contract.FileBytes[1000000:3000000]) {
		t.Errorf("GET /file, a range = %d, %d bytes (%v); want 206, the range's 2000000 bytes", resp.StatusCode, len(body), err)
	}

	// The handler flushes line 0 and then waits for the client to go:
	// line 0 reaches the client while the handler is still running only
	// if Flush crosses.
	streamCtx, endStream := context.WithCancel(context.Background())
	firstLine := make(chan string, 1)
	go func() {
		req, _ := http.NewRequestWithContext(streamCtx, "GET", srv.URL+"/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			firstLine <- err.Error()
			return
		}
		defer resp.Body.Close()
		s, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil {
			s += err.Error()
		}
		firstLine <- s
	}()
	select {
	case s := <-firstLine:
		if s != "line 0\n" {
			t.Errorf("GET /stream: first line %q; want \"line 0\\n\"", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("GET /stream: the flushed line 0 did not reach the client while the handler ran")
	}
	endStream()

	// A handler that fails before answering: 502, the detail left to the
	// host's log. One
	// that fails after answering: its answer stands, nothing appended.
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/panic", http.StatusBadGateway, "the plugin's handler failed\n"},
		{"/partial", http.StatusAccepted, "partial"},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || string(body) != c.body {
			t.Errorf("GET %s = %d %q; want %d %q", c.path, resp.StatusCode, body, c.status, c.body)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/wait", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("GET /wait returned, though its client gave up")
	}
	testutil.Eventually(t, "the plugin's request context to end with the client's", func() bool {
		resp, err := http.Get(srv.URL + "/waited")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b) == "cancelled"
	})
}
