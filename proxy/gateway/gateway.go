// Package gateway is corral's LLM gateway: it authenticates every request,
// has the scheduler place it on a healthy Ollama instance for the model
// (waiting in corral's queue while they are all busy), passes streams
// through chunk by chunk, and retries what failed before the client saw a
// byte.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"corral/proxy/scheduler"
)

// Authorizer checks a bearer key for a model and names the key. An error
// is a 401, or a 403 when it has a Forbidden() bool method returning true.
type Authorizer interface {
	Authorize(ctx context.Context, key, model string) (name string, err error)
}

// Config tunes the gateway; zero values take the defaults.
type Config struct {
	MaxBodyBytes      int64         // request body limit (32 MiB: images come base64)
	HeaderTimeout     time.Duration // upstream response headers; covers a cold model load
	IdleTimeout       time.Duration // no bytes from a streaming upstream this long ends it
	KeepAliveInterval time.Duration // SSE comment lines while waiting for the first byte
	MaxAttempts       int           // tries per request across instances
	EjectAfter        int           // consecutive failures that eject an instance
	EjectFor          time.Duration // first ejection; doubles, up to MaxEject
	MaxEject          time.Duration
	IdleConnsPerHost  int
	// DefaultMaxTokens is reserved against quotas for a request that does
	// not bound its output.
	DefaultMaxTokens int
	Meter            Meter      // nil: no quotas or usage
	Filter           Filter     // nil: no content filter
	Observer         Observer   // nil: no metrics
	Priorities       Priorities // nil: every key equal
	// CORS lets web pages of the origins it allows call the gateway from
	// a browser; nil: none may.
	CORS CORS
	// Version is corral's, for GET /.
	Version string
	// Scheduling tunes corral's queue (its clock is the real one).
	Scheduling scheduler.Config
	Logger     *slog.Logger
}

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 32 << 20
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = 5 * time.Minute
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.KeepAliveInterval <= 0 {
		c.KeepAliveInterval = 10 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.EjectAfter <= 0 {
		c.EjectAfter = 3
	}
	if c.EjectFor <= 0 {
		c.EjectFor = 5 * time.Second
	}
	if c.MaxEject <= 0 {
		c.MaxEject = 2 * time.Minute
	}
	if c.IdleConnsPerHost <= 0 {
		c.IdleConnsPerHost = 256
	}
	if c.DefaultMaxTokens <= 0 {
		c.DefaultMaxTokens = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Gateway is an http.Handler for the /v1 and /api routes.
type Gateway struct {
	cfg       Config
	upstreams Upstreams
	auth      Authorizer
	transport *http.Transport
	states    states
	log       *slog.Logger
	now       func() time.Time
	obs       Observer
	sched     *scheduler.Scheduler

	syncMu sync.Mutex
	synced *Snapshot // what the scheduler was last told

	rc recheck // coalesces re-reading the instances for an unknown model

	watchMu  sync.Mutex
	waiting  int  // requests in Acquire
	watching bool // watch runs

	// bg owns the watcher goroutine; Close stops it.
	bg     sync.WaitGroup
	bgCtx  context.Context
	bgStop context.CancelFunc

	ridPrefix [8]byte // hex
	ridSeq    atomic.Uint64
}

// New builds a gateway over upstreams, admitting what auth admits.
func New(cfg Config, upstreams Upstreams, auth Authorizer) *Gateway {
	cfg.defaults()
	g := &Gateway{
		cfg:       cfg,
		upstreams: upstreams,
		auth:      auth,
		log:       cfg.Logger,
		now:       time.Now,
		obs:       cfg.Observer,
		sched:     scheduler.New(cfg.Scheduling),
	}
	g.bgCtx, g.bgStop = context.WithCancel(context.Background())
	g.transport = newTransport(cfg, newUpstreamDialer(g.inService))
	var p [4]byte
	rand.Read(p[:])
	hex.Encode(g.ridPrefix[:], p[:])
	return g
}

// inService reports whether the snapshot has a healthy instance at addr
// (host:port), for a connect in progress.
func (g *Gateway) inService(addr string) bool {
	s := g.upstreams.Snapshot()
	for i := range s.Upstreams {
		u := &s.Upstreams[i]
		if u.URL != nil && hostPort(u) == addr {
			return u.Healthy
		}
	}
	return false
}

// Close stops the gateway's own goroutines and drops idle upstream
// connections.
func (g *Gateway) Close() {
	g.bgStop()
	g.bg.Wait()
	g.transport.CloseIdleConnections()
}

// Queue lists the requests waiting in corral's queue, by model and
// consumer.
func (g *Gateway) Queue() []scheduler.Queued { return g.sched.Queue() }

// Holding lists, by instance, the models the scheduler knows each holds
// or is loading.
func (g *Gateway) Holding() map[string][]scheduler.Held { return g.sched.Holding() }

// Inflight is the number of requests the gateway has on an instance now.
func (g *Gateway) Inflight(instance string) int {
	return int(g.states.get(instance).inflight.Load())
}

// WaitIdle returns once the instance has no request in flight, or ctx ends.
// The engine calls it while an instance drains.
func (g *Gateway) WaitIdle(ctx context.Context, instance string) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for g.Inflight(instance) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// requestID passes the client's X-Request-ID through, or makes one: a
// random prefix per gateway and a sequence number, unique without a call
// to the random source per request.
func (g *Gateway) requestID(r *http.Request) string {
	if id := r.Header.Get(requestIDKey); id != "" && len(id) <= 128 {
		return id
	}
	var b [16]byte
	copy(b[:], g.ridPrefix[:])
	n := g.ridSeq.Add(1)
	for i := 15; i >= 8; i-- {
		b[i] = hexDigits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

// requestIDKey is X-Request-ID as Go's header maps key it: given so, Get
// and Set find it without making the canonical form anew each request.
const requestIDKey = "X-Request-Id"

// apiKey is the request's key: "Authorization: Bearer KEY", as OpenAI
// and Ollama clients send it, or "x-api-key: KEY", as Anthropic's do.
func apiKey(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if h == "" {
		return strings.TrimSpace(r.Header.Get(anthropicKeyField))
	}
	return ""
}

// anthropicKeyField is x-api-key as Go's header maps key it.
const anthropicKeyField = "X-Api-Key"

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := g.requestID(r)
	w.Header().Set(requestIDKey, rid)
	if g.cors(w, r) {
		return // a preflight, answered without a key
	}
	if r.URL.Path == "/" {
		g.serveRoot(w, r)
		return
	}
	rt, ok := routes[r.URL.Path]
	rt.name = r.URL.Path
	if !ok && strings.HasPrefix(r.URL.Path, "/v1/models/") {
		rt, ok = route{name: "/v1/models/{model}", dialect: dialectOpenAI, kind: kindModelInfo}, true
	}
	if !ok {
		d := dialectOllama
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			d = dialectOpenAI
		}
		apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), Code: "unknown_url"}.write(w, d)
		return
	}
	key := apiKey(r)
	if key == "" {
		how := "Authorization: Bearer <key>"
		if rt.dialect == dialectAnthropic {
			how = "x-api-key: <key> or " + how
		}
		apiError{Status: http.StatusUnauthorized, Message: "missing API key: send " + how + " (create one with corral keys create NAME)", Code: "invalid_api_key"}.write(w, rt.dialect)
		return
	}
	switch rt.kind {
	case kindForbidden:
		if g.refuseKey(w, r, key, rt.dialect) {
			return
		}
		apiError{Status: http.StatusForbidden, Message: fmt.Sprintf("%s changes models on every instance, so corral does it: use corral's model management (corral pull, corral rm), not the gateway", r.URL.Path), Code: "model_management"}.write(w, rt.dialect)
	case kindModel:
		g.serveModel(w, r, rt, key, rid)
	default:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			apiError{Status: http.StatusMethodNotAllowed, Message: r.URL.Path + " answers GET"}.write(w, rt.dialect)
			return
		}
		if g.refuseKey(w, r, key, rt.dialect) {
			return
		}
		g.serveAggregate(w, r, rt, key)
	}
}

// refuseKey answers 401 (or 403) and reports true when key is not good
// for any model: for the routes without one, and before a request's
// other faults are told to its caller.
func (g *Gateway) refuseKey(w http.ResponseWriter, r *http.Request, key string, d dialect) bool {
	if _, err := g.auth.Authorize(r.Context(), key, ""); err != nil {
		authError(err).write(w, d)
		return true
	}
	return false
}

func authError(err error) apiError {
	var f interface{ Forbidden() bool }
	if errors.As(err, &f) && f.Forbidden() {
		return apiError{Status: http.StatusForbidden, Message: err.Error(), Code: "model_not_allowed"}
	}
	return apiError{Status: http.StatusUnauthorized, Message: err.Error(), Code: "invalid_api_key"}
}

func (g *Gateway) serveModel(w http.ResponseWriter, r *http.Request, rt route, key, rid string) {
	if r.Method != http.MethodPost {
		apiError{Status: http.StatusMethodNotAllowed, Message: r.URL.Path + " answers POST"}.write(w, rt.dialect)
		return
	}
	// The key is checked before a byte of the body is read: a stranger
	// with a made-up key gets nothing held for them.
	if g.refuseKey(w, r, key, rt.dialect) {
		return
	}
	body, aerr := readBody(w, r, g.cfg.MaxBodyBytes)
	var req modelRequest
	if aerr == nil {
		req, aerr = parseModelRequest(body)
	}
	if aerr != nil {
		aerr.write(w, rt.dialect)
		return
	}
	model := CanonicalModel(req.Model)
	keyName, err := g.auth.Authorize(r.Context(), key, model)
	if err != nil {
		authError(err).write(w, rt.dialect)
		return
	}
	// The lists read the snapshot that routing reads: a model is listed
	// and served, or neither. One missing from it has the instances asked
	// again before the answer is that it does not exist.
	if s, ok := g.findModel(r.Context(), model); !ok {
		if r.Context().Err() != nil {
			return // the client left while the instances were asked
		}
		g.log.Info("model not found", "id", rid, "key", keyName, "path", r.URL.Path, "model", model)
		unavailable(s, model, g.mayUse(r.Context(), key)).write(w, rt.dialect)
		return
	}
	stream := rt.streamDefault
	if req.Stream != nil {
		stream = *req.Stream
	}
	user := endUser(r, req)
	fr := forwardReq{route: rt, body: body, model: model, stream: stream, rid: rid, filter: g.cfg.Filter, key: keyName, consumer: keyName,
		allowed: g.mayUse(r.Context(), key)}
	if user != "" {
		// A chat UI's users share its key's place in the queue fairly.
		fr.consumer = keyName + "/" + user
	}
	if g.cfg.Filter != nil {
		if phrase, hit := g.cfg.Filter.Prompt(r.URL.Path, body); hit {
			if g.obs != nil {
				g.obs.FilterHit("prompt")
			}
			g.log.Info("prompt filtered", "id", rid, "key", keyName, "phrase", phrase)
			apiError{Status: http.StatusBadRequest, Message: "the request was refused by the content filter: rephrase it", Code: "content_filter"}.write(w, rt.dialect)
			return
		}
	}
	var resv Reservation
	if g.cfg.Meter != nil {
		maxTokens := req.maxTokens()
		if maxTokens == 0 {
			maxTokens = g.cfg.DefaultMaxTokens
		}
		// The real count includes the prompt: hold a rough estimate of it
		// too (about four bytes a token), so a settle rarely overshoots.
		maxTokens += min(len(body)/4, 32<<10)
		resv, err = g.cfg.Meter.Reserve(r.Context(), keyName, model, maxTokens)
		if err != nil {
			quotaError(err).write(w, rt.dialect)
			return
		}
		// Exact counts of an OpenAI stream come only in its usage chunk.
		if stream && rt.sse && rt.events == eventsNone && (req.StreamOptions == nil || !req.StreamOptions.IncludeUsage) {
			fr.body, fr.dropUsage = withUsage(body), true
		}
	}
	// Settled in a defer, so even a panic below gives the tokens back.
	var u Usage
	if resv != nil {
		defer func() { resv.Settle(u) }()
	}
	start := g.now()
	res := g.forward(w, r, fr)
	cnt := res.counts
	if !cnt.Known && res.frames > 0 {
		// The stream ended before the instance's own counts, which come
		// last: the client left (a chat UI's Stop does that), the instance
		// died, or the filter cut it. What was generated is still use, for
		// quotas too, so estimate it rather than record nothing.
		cnt = counts{Prompt: estimatePromptTokens(body), Completion: res.frames}
	}
	u = Usage{
		Start: start, Key: keyName, User: user, Model: model, Instance: res.instance, Route: r.URL.Path,
		PromptTokens: cnt.Prompt, CompletionTokens: cnt.Completion, CountsKnown: cnt.Known,
		TTFT: res.ttfb, Queued: res.queued, Duration: g.now().Sub(start), Status: res.status, Outcome: res.outcome, Attempts: res.attempts,
	}
	if res.hit != "" && g.obs != nil {
		g.obs.FilterHit("output")
	}
	if g.obs != nil {
		g.obs.Observe(u)
	}
	// LogAttrs: the line is written for every request, and typed
	// attributes spare boxing each value.
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("id", rid), slog.String("key", keyName), slog.String("user", u.User),
		slog.String("path", r.URL.Path), slog.String("model", model), slog.Bool("stream", stream),
		slog.String("instance", res.instance), slog.Int("attempts", res.attempts), slog.Int("status", res.status), slog.Int64("bytes", res.bytes),
		slog.Int("prompt_tokens", u.PromptTokens), slog.Int("completion_tokens", u.CompletionTokens),
		slog.Int64("ttfb_ms", res.ttfb.Milliseconds()), slog.Int64("queued_ms", res.queued.Milliseconds()), slog.Int64("duration_ms", u.Duration.Milliseconds()), slog.String("outcome", res.outcome))
}

// quotaError answers a refused reservation: 429 with Retry-After when the
// meter says when to come back.
func quotaError(err error) apiError {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return apiError{Status: http.StatusTooManyRequests, Message: err.Error(), Code: "rate_limit_exceeded", RetryAfter: ra.RetryAfter()}
	}
	return apiError{Status: http.StatusServiceUnavailable, Message: "usage accounting failed: " + err.Error(), RetryAfter: 5 * time.Second}
}

// modelsAvailable lists canonical models present on any instance that
// allowed allows (nil: all), sorted.
func modelsAvailable(s *Snapshot, allowed func(string) bool) []string {
	set := map[string]bool{}
	for _, u := range s.Upstreams {
		for m := range u.Models {
			if allowed == nil || allowed(m) {
				set[m] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
