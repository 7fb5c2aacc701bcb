package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// deps are the server's replaceable collaborators; zero fields get the
// production ones.
type deps struct {
	clock    clock
	exit     func(code int) // os.Exit; tests record the call instead
	logger   *slog.Logger
	instance string // reported by /_sim/stats; the hostname by default
}

// server is the simulated Ollama server.
type server struct {
	cfg      config
	clock    clock
	log      *slog.Logger
	exit     func(int)
	instance string
	store    *store
	sim      *sim
	stats    *stats
	sched    *scheduler
	mux      *http.ServeMux
	ids      atomic.Int64

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	bgMu   sync.Mutex
	closed bool
	wg     sync.WaitGroup // background goroutines (loads, delayed exits)
}

var _ http.Handler = (*server)(nil)

// newServer builds the server and writes the preset models into the
// models directory when they are not there yet.
func newServer(cfg config, d deps) (*server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.clock == nil {
		d.clock = realClock{}
	}
	if d.exit == nil {
		d.exit = os.Exit
	}
	if d.logger == nil {
		d.logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if d.instance == "" {
		d.instance, _ = os.Hostname()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{
		cfg:      cfg,
		clock:    d.clock,
		log:      d.logger,
		exit:     d.exit,
		instance: d.instance,
		store:    &store{dir: cfg.ModelsDir},
		sim:      newSim(cfg.Sim),
		stats:    newStats(d.clock.Now()),
		mux:      http.NewServeMux(),
		ctx:      ctx,
		cancel:   cancel,
	}
	s.sched = newScheduler(ctx, cfg, s.clock, s.sim, s.stats, s.background)
	for _, p := range cfg.Presets {
		if err := s.installPreset(p); err != nil {
			cancel()
			return nil, fmt.Errorf("ollama-sim: preset %s: %w", p, err)
		}
	}
	s.routes()
	return s, nil
}

// Close ends hanging requests and background work and waits for it.
func (s *server) Close() {
	s.bgMu.Lock()
	s.closed = true
	s.bgMu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// background runs f in a goroutine that Close waits for; f must return
// soon after s.ctx ends. After Close it runs nothing and returns false.
func (s *server) background(f func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// routes is the whole route table.
func (s *server) routes() {
	m := s.mux
	m.HandleFunc("GET /{$}", s.handleRoot)
	m.HandleFunc("GET /api/version", s.handleVersion)
	m.HandleFunc("GET /api/tags", s.ollama(s.handleTags))
	m.HandleFunc("GET /api/ps", s.ollama(s.handlePs))
	m.HandleFunc("POST /api/show", s.ollama(s.handleShow))
	m.HandleFunc("POST /api/pull", s.ollama(s.handlePull))
	m.HandleFunc("DELETE /api/delete", s.ollama(s.handleDelete))
	m.HandleFunc("POST /api/copy", s.ollama(s.handleCopy))
	m.HandleFunc("POST /api/create", s.ollama(s.handleCreate))
	m.HandleFunc("HEAD /api/blobs/{digest}", s.ollama(s.handleHeadBlob))
	m.HandleFunc("POST /api/blobs/{digest}", s.ollama(s.handleCreateBlob))

	m.HandleFunc("POST /api/chat", s.inference(ollamaAPI, s.ollama(s.handleChat)))
	m.HandleFunc("POST /api/generate", s.inference(ollamaAPI, s.ollama(s.handleGenerate)))
	m.HandleFunc("POST /api/embed", s.inference(ollamaAPI, s.ollama(s.handleEmbed)))
	m.HandleFunc("POST /api/embeddings", s.inference(ollamaAPI, s.ollama(s.handleEmbeddings)))

	m.HandleFunc("POST /v1/chat/completions", s.inference(openaiAPI, s.openai(s.handleChatCompletions)))
	m.HandleFunc("POST /v1/completions", s.inference(openaiAPI, s.openai(s.handleCompletions)))
	m.HandleFunc("POST /v1/embeddings", s.inference(openaiAPI, s.openai(s.handleOpenAIEmbeddings)))
	m.HandleFunc("POST /v1/responses", s.inference(openaiAPI, s.openai(s.handleResponses)))
	m.HandleFunc("POST /v1/messages", s.inference(anthropicAPI, s.anthropic(s.handleMessages)))
	m.HandleFunc("GET /v1/models", s.openai(s.handleListModels))
	m.HandleFunc("GET /v1/models/{model...}", s.openai(s.handleRetrieveModel))

	m.HandleFunc("GET /_sim/config", s.handleGetConfig)
	m.HandleFunc("POST /_sim/config", s.handleSetConfig)
	m.HandleFunc("GET /_sim/stats", s.handleStats)
	m.HandleFunc("POST /_sim/reset", s.handleReset)
	m.HandleFunc("POST /_sim/exit", s.handleExit)
}

// ServeHTTP counts and logs every request, one line each.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, info := withInfo(r.Context())
	r = r.WithContext(ctx)
	rec := &recorder{ResponseWriter: w, info: info}
	completed := false
	defer func() {
		status := rec.status
		switch {
		case !completed:
			status = 0 // aborted: counted and logged as such
		case status == 0:
			status = http.StatusOK
		}
		path := routeOf(r)
		if !strings.HasPrefix(path, "/_sim/") {
			s.stats.request(path, status)
		}
		attrs := []any{
			"method", r.Method,
			"path", r.URL.Path,
			"status", status,
			"bytes", rec.bytes,
			"duration", time.Since(start).String(),
			"remote", r.RemoteAddr,
		}
		if info.model != "" {
			attrs = append(attrs, "model", info.model)
		}
		if !completed {
			attrs = append(attrs, "aborted", true)
		}
		s.log.Info("request", attrs...)
	}()
	if !strings.HasPrefix(r.URL.Path, "/api/blobs/") {
		// Read small bodies whole before handling: net/http notices a
		// client going away (and cancels r.Context()) only once the body
		// has been read to its end.
		body, err := io.ReadAll(http.MaxBytesReader(rec, r.Body, maxBody))
		if err != nil {
			writeJSON(rec, http.StatusBadRequest, map[string]string{"error": err.Error()})
			completed = true
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	s.mux.ServeHTTP(rec, r)
	completed = true
}

// maxBody bounds request bodies other than blob uploads.
const maxBody = 64 << 20

// routeOf names a request by its route ("/api/chat",
// "/api/blobs/{digest}"), or its path when no route matched.
func routeOf(r *http.Request) string {
	if r.Pattern == "" {
		return r.URL.Path
	}
	_, path, ok := strings.Cut(r.Pattern, " ")
	if !ok {
		path = r.Pattern
	}
	return strings.TrimSuffix(path, "{$}")
}

// recorder remembers the status and size of a response; it keeps the
// writer flushable.
type recorder struct {
	http.ResponseWriter
	info   *reqInfo
	status int
	bytes  int64
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.bytes += int64(n)
	return n, err
}

func (rw *recorder) Flush() {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// started reports whether the response has begun.
func started(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case *recorder:
			return t.status != 0
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}

// apiFamily says which error shape an endpoint answers with.
type apiFamily int

const (
	ollamaAPI    apiFamily = iota // {"error": "..."}
	openaiAPI                     // {"error": {"message", "type", "param", "code"}}
	anthropicAPI                  // {"type": "error", "error": {"type", "message"}, "request_id"}
)

// apiError is an error the client sees, with its status.
type apiError struct {
	status int
	msg    string
	// typed gives OpenAI errors the type of their status, as Ollama's
	// middleware does for requests it rejects itself; errors from the
	// handlers behind it are always "api_error".
	typed bool
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// apiHandler is a handler whose error, if any, the wrapper writes.
type apiHandler func(w http.ResponseWriter, r *http.Request) error

// ollama adapts an apiHandler to Ollama's native error shape.
func (s *server) ollama(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, ollamaAPI, err)
		}
	}
}

// openai adapts an apiHandler to the OpenAI error shape.
func (s *server) openai(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, openaiAPI, err)
		}
	}
}

// anthropic adapts an apiHandler to Anthropic's error shape.
func (s *server) anthropic(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, anthropicAPI, err)
		}
	}
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, api apiFamily, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{status: http.StatusInternalServerError, msg: err.Error()}
	}
	if started(w) {
		// Mid-stream, as Ollama's streamResponse does: one more line.
		if api == ollamaAPI {
			_ = json.NewEncoder(w).Encode(map[string]string{"error": ae.msg})
		}
		s.log.Warn("error after the response started", "path", r.URL.Path, "error", ae.msg)
		return
	}
	writeAPIError(w, api, ae)
}

// writeAPIError writes an error body in the API's shape.
func writeAPIError(w http.ResponseWriter, api apiFamily, e *apiError) {
	if api == anthropicAPI {
		// Anthropic's middleware types every error by its status.
		writeOpenAIJSON(w, e.status, anthropicError(e.status, e.msg))
		return
	}
	if api == openaiAPI {
		code := http.StatusInternalServerError
		if e.typed {
			code = e.status
		}
		writeOpenAIJSON(w, e.status, newOpenAIError(code, e.msg))
		return
	}
	writeJSON(w, e.status, map[string]string{"error": e.msg})
}

// writeJSON writes v the way gin's c.JSON does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeOpenAIJSON writes v the way Ollama's OpenAI middleware does (a JSON
// encoder, so with a trailing newline).
func writeOpenAIJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON body the way gin's ShouldBindJSON does, with
// Ollama's messages for an empty or broken body.
func decodeBody(r *http.Request, v any) error {
	err := json.NewDecoder(r.Body).Decode(v)
	switch {
	case errors.Is(err, io.EOF):
		return &apiError{status: http.StatusBadRequest, msg: "missing request body"}
	case err != nil:
		return &apiError{status: http.StatusBadRequest, msg: err.Error()}
	}
	return nil
}

// flush pushes what was written to the client.
func flush(w http.ResponseWriter) error {
	return http.NewResponseController(w).Flush()
}

func (s *server) nextID() int64 { return s.ids.Add(1) % 999 }

func (s *server) handleRoot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "Ollama is running")
}

func (s *server) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
}
