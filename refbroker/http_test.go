package refbroker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// TestResponseWriterFencedAfterReturn: once a proxy's ServeHTTP has
// returned (here because the client went away), the remote handler can no
// longer write to the writer it was given, as net/http requires: its
// Write fails, and nothing reaches the response.
func TestResponseWriterFencedAfterReturn(t *testing.T) {
	release := make(chan struct{})
	wrote := make(chan error, 1)
	h := &lateHandler{started: make(chan struct{}), release: release, wrote: wrote}
	client, _ := testPair(t, map[string]any{"h": h})
	hp, err := Dispense[http.Handler](client, "h")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	returned := make(chan struct{})
	go func() {
		hp.ServeHTTP(rec, req)
		close(returned)
	}()
	<-h.started
	cancel()
	testutil.Receive(t, returned, 5*time.Second, "ServeHTTP did not return within 5 s of the client going away")
	close(release)
	err = testutil.Receive(t, wrote, 5*time.Second, "the handler's late Write did not return within 5 s")
	if err == nil || !strings.Contains(err.Error(), "after its ServeHTTP returned") {
		t.Errorf("the handler's late Write = %v; want it refused", err)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("the response got %q after ServeHTTP returned", rec.Body.String())
	}
}

// lateHandler writes once its request is over and it is released.
type lateHandler struct {
	started chan struct{}
	release chan struct{}
	wrote   chan error
}

func (h *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	close(h.started)
	<-r.Context().Done()
	<-h.release
	_, err := w.Write([]byte("late"))
	h.wrote <- err
}

// copyHandler io.Copies src() into its response; if the copy fails, it
// answers 500.
type copyHandler struct{ src func() io.Reader }

func (h copyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(w, h.src()); err != nil {
		http.Error(w, "the source failed: "+err.Error(), http.StatusInternalServerError)
	}
}

// TestResponseWriterReadFrom: io.Copy into a remote response writer (as
// http.ServeContent and http.FileServer do) moves up to a megabyte a
// round trip, not io.Copy's 32 KiB; the body, its sniffed Content-Type
// and the status are as net/http's; and a source that fails before its
// first bytes still lets the handler answer with an error status.
func TestResponseWriterReadFrom(t *testing.T) {
	data := pattern(4 << 20)
	// readerOnly offers io.Copy no WriteTo, as a file or a LimitReader
	// (http.ServeContent's) does not.
	h := copyHandler{src: func() io.Reader { return readerOnly{bytes.NewReader(data)} }}
	client, server := testPair(t, map[string]any{"h": h})
	hp, err := Dispense[http.Handler](client, "h")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hp)
	defer srv.Close()
	before := server.Stats().CallsMade
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	calls := server.Stats().CallsMade - before
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Content-Type") != http.DetectContentType(data) {
		t.Fatalf("got %d, %d bytes (equal: %v, %v), Content-Type %q; want 200, the %d bytes, %q",
			resp.StatusCode, len(body), bytes.Equal(body, data), err, resp.Header.Get("Content-Type"), len(data), http.DetectContentType(data))
	}
	if calls > 8 {
		t.Errorf("the handler's 4 MiB took %d calls to the writer; want a megabyte a call (header and four writes)", calls)
	}

	failing := copyHandler{src: func() io.Reader { return iotest.ErrReader(errors.New("disk gone")) }}
	client2, _ := testPair(t, map[string]any{"h": failing})
	hp2, err := Dispense[http.Handler](client2, "h")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	hp2.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "disk gone") {
		t.Errorf("a source failing at once: %d %q; want 500 saying so", rec.Code, rec.Body.String())
	}
}
