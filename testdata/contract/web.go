package contract

import (
	"bytes"
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
//	GET  /stream  "line 0", flushed; "line 1" only if the client is still
//	              there 10 s later (a client that reads line 0 sooner has
//	              it from the flush)
//	GET  /wait    blocks until the request's context ends
//	GET  /waited  "cancelled" once a /wait saw its context end
//	GET  /panic   panics before answering
//	GET  /partial 202 "partial", then panics
//	GET  /file    FileBytes as "big.bin" through http.ServeContent (ranges
//	              too)
func NewWeb() http.Handler {
	var cancelled atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "big.bin", time.Time{}, bytes.NewReader(FileBytes))
	})
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
		fmt.Fprint(w, "line 0\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			fmt.Fprint(w, "line 1\n")
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
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) {
		panic("the handler broke")
	})
	mux.HandleFunc("GET /partial", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, "partial")
		panic("the handler broke after answering")
	})
	return mux
}

// FileBytes is what GET /file serves: 3 MiB and a bit, more than a round
// trip of a stream carries.
var FileBytes = Pattern(3<<20 + 12345)
