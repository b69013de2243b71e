package contract

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// NewWeb returns the HTTP handler the test plugins serve as "web", behind
// a host's server:
//
//	POST /echo    201, X-Plugin: yes, "echo <method> <query q> <X-Client> <body>"
//	GET  /stream  two lines, flushed one at a time
//	GET  /wait    blocks until the request's context ends
//	GET  /waited  "cancelled" once a /wait saw its context end
func NewWeb() http.Handler {
	var cancelled atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Plugin", "yes")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "echo %s %s %s %s", r.Method, r.URL.Query().Get("q"), r.Header.Get("X-Client"), body)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		for i := range 2 {
			fmt.Fprintf(w, "line %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled.Store(true)
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("GET /waited", func(w http.ResponseWriter, r *http.Request) {
		if cancelled.Load() {
			fmt.Fprint(w, "cancelled")
		}
	})
	return mux
}
