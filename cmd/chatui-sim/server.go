package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// server answers HTTP for one role.
type server struct {
	cfg     config
	log     *slog.Logger
	client  *http.Client // to the upstream OpenAI-compatible API
	buckets *buckets     // minio role only
	mux     *http.ServeMux
}

var _ http.Handler = (*server)(nil)

// newServer builds the server; for a web role with a data directory it
// creates the directory and appends a line to its starts.log, so a test
// can count the starts that shared one volume.
func newServer(cfg config, logger *slog.Logger) (*server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stdout, nil))
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // the gateway is on the private network
	s := &server{
		cfg:    cfg,
		log:    logger,
		client: &http.Client{Transport: transport},
		mux:    http.NewServeMux(),
	}
	if cfg.Role.web() && cfg.DataDir != "" {
		if err := s.recordStart(); err != nil {
			return nil, err
		}
	}
	s.routes()
	return s, nil
}

// routes is the whole route table.
func (s *server) routes() {
	s.mux.HandleFunc("GET /env", s.handleEnv)
	s.mux.HandleFunc("GET /request", s.handleRequest)
	switch {
	case s.cfg.Role.web():
		s.mux.HandleFunc("GET /{$}", s.handleIndex)
		s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
		s.mux.HandleFunc("GET /health", s.handleHealth)
		s.mux.HandleFunc("GET /api/health", s.handleHealth)
		s.mux.HandleFunc("GET /ws", s.handleWebsocket)
		s.mux.HandleFunc("POST /chat", s.handleChat)
		s.mux.HandleFunc("GET /models", s.handleModels)
		s.mux.HandleFunc("GET /data", s.handleDataGet)
		s.mux.HandleFunc("POST /data", s.handleDataPost)
	case s.cfg.Role == roleMinIO:
		s.buckets = newBuckets()
		s.mux.HandleFunc("GET /minio/health/live", s.handleMinIOHealth)
		s.mux.HandleFunc("GET /health", s.handleMinIOHealth) // RustFS's
		s.mux.HandleFunc("GET /minio/health/ready", s.handleMinIOHealth)
		s.mux.HandleFunc("GET /_sim/buckets", s.handleBucketList)
		// One pattern for all methods: "HEAD /{bucket}" would conflict
		// with "GET /env", which also answers HEAD.
		// minio-go writes bucket paths with a trailing slash.
		s.mux.HandleFunc("/{bucket}", s.handleBucket)
		s.mux.HandleFunc("/{bucket}/{$}", s.handleBucket)
		s.mux.HandleFunc("/{bucket}/{key...}", s.handleObject)
	}
}

// ServeHTTP logs one line per request, after it ends; a websocket's line
// comes when the connection closes.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	s.mux.ServeHTTP(rec, r)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	s.log.Info("request", "role", string(s.cfg.Role), "method", r.Method, "path", r.URL.Path,
		"status", status, "bytes", rec.bytes, "duration", time.Since(start).Round(time.Microsecond).String(),
		"remote", r.RemoteAddr)
}

// recorder keeps the status and size of a response. Unwrap lets
// http.ResponseController and the websocket upgrade reach the flusher and
// hijacker beneath.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *server) handleEnv(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Env)
}

// handleRequest echoes what arrived, so a test can see what a proxy in
// front of the container forwards (Host, X-Forwarded-*).
func (s *server) handleRequest(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"method":  r.Method,
		"host":    r.Host,
		"uri":     r.RequestURI,
		"proto":   r.Proto,
		"remote":  r.RemoteAddr,
		"headers": r.Header,
	})
}

func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"status": true})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// Request bodies are read under a size limit and a deadline.
const (
	maxBody     = 1 << 20
	bodyTimeout = 10 * time.Second
)

// readBody reads the request body within maxBody and bodyTimeout. On
// failure it has written the answer and returns false.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	// Clear the deadline: after the body, the server keeps reading to
	// notice a client that leaves, and a past deadline would end a
	// streaming answer.
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
		} else {
			writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}
