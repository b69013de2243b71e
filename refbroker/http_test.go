package refbroker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
