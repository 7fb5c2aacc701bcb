package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Ollama's native API. Checks run in the order Ollama's handlers run them,
// so the same bad request gets the same error.

// completionJob is a chat or generate request, from whichever API.
type completionJob struct {
	chat       bool     // chat (messages) rather than generate (prompt)
	model      string   // as the client sent it; echoed in answers
	contents   []string // message contents counted by promptTokens
	contextLen int      // entries of a generate "context"
	empty      bool     // no messages / empty prompt: load or unload only
	stream     bool
	keepAlive  *time.Duration
	options    map[string]any
	tools      bool
	think      *ThinkValue
	suffix     bool
}

// finished is the end of a generation as the wires write it.
type finished struct {
	content    string
	doneReason string
	metrics    Metrics
	loadOnly   bool // a load or unload answer: a single JSON object
}

// wire writes one endpoint's format for the token engine.
type wire interface {
	// token writes and flushes one streamed token.
	token(text string) error
	// finish writes the end of the stream, or the whole answer.
	finish(f finished) error
}

// runCompletion is the one generation path behind /api/chat,
// /api/generate, /v1/chat/completions and /v1/completions.
func (s *server) runCompletion(w http.ResponseWriter, r *http.Request, job completionJob, out wire) error {
	ctx := r.Context()
	start := s.clock.Now()
	kind := "generate"
	if job.chat {
		kind = "chat"
	}

	n := parseName(job.model)
	if !n.valid() {
		if job.chat {
			return errorf(http.StatusBadRequest, "model is required")
		}
		return errorf(http.StatusNotFound, "model '%s' not found", job.model)
	}
	m, err := s.store.model(s.store.resolve(n))
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, "model '%s' not found", job.model)
	} else if err != nil {
		return err
	}
	s.stats.servedModel(r, m.name.short())

	if job.empty && job.keepAlive != nil && *job.keepAlive == 0 {
		s.sched.unload(m)
		return out.finish(finished{doneReason: "unload", loadOnly: true})
	}

	caps := m.capabilities()
	if job.think.enabled() && !slices.Contains(caps, "thinking") {
		return errorf(http.StatusBadRequest, "%q does not support thinking", job.model)
	}
	if !slices.Contains(caps, "completion") {
		return errorf(http.StatusBadRequest, "%q does not support %s", job.model, kind)
	}
	if job.tools && !slices.Contains(caps, "tools") {
		return errorf(http.StatusBadRequest, "%s does not support tools", m.name)
	}
	if job.suffix && !slices.Contains(caps, "insert") {
		return errorf(http.StatusBadRequest, "%s does not support insert", m.name)
	}

	rn, err := s.sched.acquire(ctx, m, job.keepAlive, intOption(job.options, "num_ctx"))
	if err != nil {
		return scheduleError(job.model, err)
	}
	defer s.sched.release(rn)
	loaded := s.clock.Now()

	if job.empty {
		return out.finish(finished{doneReason: "load", loadOnly: true})
	}

	free, err := rn.slot(ctx)
	if err != nil {
		return scheduleError(job.model, err)
	}
	defer free()

	prompt := promptTokens(job.contents, job.contextLen)
	s.stats.addPromptTokens(prompt)
	limit, limited := numPredict(job.options)
	if !limited {
		limit = s.sim.get().DefaultTokens
	}
	spec := genSpec{promptTokens: prompt, tokens: limit, limited: limited, stop: stopOption(job.options)}
	res, err := s.generate(ctx, spec, func(tok string) error {
		if job.stream {
			return out.token(tok)
		}
		return nil
	})
	switch {
	case errors.Is(err, errCut), errors.Is(err, errExited):
		panic(http.ErrAbortHandler) // drop the connection: no final chunk
	case err != nil:
		// The client went away; nobody is left to answer.
		s.log.Debug("generation stopped", "model", m.name.short(), "error", err)
		return nil
	}

	end := s.clock.Now()
	load := max(loaded.Sub(start), time.Microsecond)
	metrics := Metrics{
		LoadDuration:       load,
		PromptEvalCount:    prompt,
		PromptEvalDuration: res.promptEvalDuration,
		EvalCount:          res.evalCount,
		EvalDuration:       res.evalDuration,
	}
	metrics.TotalDuration = max(end.Sub(start), load+res.promptEvalDuration+res.evalDuration)
	return out.finish(finished{content: res.content, doneReason: res.doneReason, metrics: metrics})
}

// scheduleError is Ollama's handleScheduleError.
func scheduleError(model string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(499, "request canceled")
	case errors.Is(err, errMaxQueue):
		return errorf(http.StatusServiceUnavailable, "%s", err.Error())
	case errors.Is(err, fs.ErrNotExist):
		return errorf(http.StatusNotFound, "model %q not found, try pulling it first", model)
	}
	return errorf(http.StatusInternalServerError, "%s", err.Error())
}

// keepAliveOf converts the request field.
func keepAliveOf(d *Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := d.Duration
	return &v
}

func streamOf(b *bool) bool { return b == nil || *b }

func (s *server) handleChat(w http.ResponseWriter, r *http.Request) error {
	var req ChatRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > 20 {
		return errorf(http.StatusBadRequest, "top_logprobs must be between 0 and 20")
	}
	contents := make([]string, len(req.Messages))
	for i, m := range req.Messages {
		contents[i] = m.Content
	}
	job := completionJob{
		chat:      true,
		model:     req.Model,
		contents:  contents,
		empty:     len(req.Messages) == 0,
		stream:    streamOf(req.Stream),
		keepAlive: keepAliveOf(req.KeepAlive),
		options:   req.Options,
		tools:     len(req.Tools) > 0,
		think:     req.Think,
	}
	return s.runCompletion(w, r, job, &chatWire{s: s, nd: ndjson{w: w}, model: req.Model, stream: job.stream})
}

func (s *server) handleGenerate(w http.ResponseWriter, r *http.Request) error {
	var req GenerateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > 20 {
		return errorf(http.StatusBadRequest, "top_logprobs must be between 0 and 20")
	}
	if req.Raw && (req.Template != "" || req.System != "" || len(req.Context) > 0) {
		return errorf(http.StatusBadRequest, "raw mode does not support template, system, or context")
	}
	var contents []string
	if req.System != "" {
		contents = append(contents, req.System)
	}
	contents = append(contents, req.Prompt)
	job := completionJob{
		model:      req.Model,
		contents:   contents,
		contextLen: len(req.Context),
		empty:      req.Prompt == "",
		stream:     streamOf(req.Stream),
		keepAlive:  keepAliveOf(req.KeepAlive),
		options:    req.Options,
		think:      req.Think,
		suffix:     req.Suffix != "",
	}
	return s.runCompletion(w, r, job, &generateWire{s: s, nd: ndjson{w: w}, model: req.Model, stream: job.stream, raw: req.Raw})
}

// ndjson writes the lines of an Ollama stream, flushing each.
type ndjson struct {
	w       http.ResponseWriter
	started bool
}

func (n *ndjson) line(v any) error {
	if !n.started {
		n.w.Header().Set("Content-Type", "application/x-ndjson")
		n.started = true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := n.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return flush(n.w)
}

// chatWire writes /api/chat answers.
type chatWire struct {
	s      *server
	nd     ndjson
	model  string
	stream bool
}

func (c *chatWire) token(text string) error {
	return c.nd.line(ChatResponse{
		Model:     c.model,
		CreatedAt: c.s.clock.Now().UTC(),
		Message:   Message{Role: "assistant", Content: text},
	})
}

func (c *chatWire) finish(f finished) error {
	resp := ChatResponse{
		Model:      c.model,
		CreatedAt:  c.s.clock.Now().UTC(),
		Message:    Message{Role: "assistant"},
		Done:       true,
		DoneReason: f.doneReason,
		Metrics:    f.metrics,
	}
	if c.stream && !f.loadOnly {
		return c.nd.line(resp)
	}
	resp.Message.Content = f.content
	writeJSON(c.nd.w, http.StatusOK, resp)
	return nil
}

// generateWire writes /api/generate answers.
type generateWire struct {
	s      *server
	nd     ndjson
	model  string
	stream bool
	raw    bool
}

func (g *generateWire) token(text string) error {
	return g.nd.line(GenerateResponse{
		Model:     g.model,
		CreatedAt: g.s.clock.Now().UTC(),
		Response:  text,
	})
}

func (g *generateWire) finish(f finished) error {
	resp := GenerateResponse{
		Model:      g.model,
		CreatedAt:  g.s.clock.Now().UTC(),
		Done:       true,
		DoneReason: f.doneReason,
		Metrics:    f.metrics,
	}
	if !f.loadOnly && !g.raw {
		resp.Context = contextTokens(f.metrics.PromptEvalCount + f.metrics.EvalCount)
	}
	if g.stream && !f.loadOnly {
		return g.nd.line(resp)
	}
	resp.Response = f.content
	writeJSON(g.nd.w, http.StatusOK, resp)
	return nil
}

// embedInputs reads the input of /api/embed: a string or a list of them.
func embedInputs(input any) ([]string, error) {
	var out []string
	switch v := input.(type) {
	case string:
		if v != "" {
			out = append(out, v)
		}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errorf(http.StatusBadRequest, "invalid input type")
			}
			out = append(out, s)
		}
	case nil:
	default:
		return nil, errorf(http.StatusBadRequest, "invalid input type")
	}
	return out, nil
}

// embed computes the vectors and token count of /api/embed and
// /v1/embeddings.
func (s *server) embed(r *http.Request, req EmbedRequest) (EmbedResponse, error) {
	ctx := r.Context()
	start := s.clock.Now()
	input, err := embedInputs(req.Input)
	if err != nil {
		return EmbedResponse{}, err
	}
	m, err := s.store.model(s.store.resolve(parseName(req.Model)))
	if errors.Is(err, fs.ErrNotExist) {
		return EmbedResponse{}, errorf(http.StatusNotFound, "model '%s' not found", req.Model)
	} else if err != nil {
		return EmbedResponse{}, err
	}
	s.stats.servedModel(r, m.name.short())

	rn, err := s.sched.acquire(ctx, m, keepAliveOf(req.KeepAlive), intOption(req.Options, "num_ctx"))
	if err != nil {
		return EmbedResponse{}, scheduleError(req.Model, err)
	}
	defer s.sched.release(rn)
	loaded := s.clock.Now()
	if len(input) == 0 {
		return EmbedResponse{Model: req.Model, Embeddings: [][]float32{}}, nil
	}
	free, err := rn.slot(ctx)
	if err != nil {
		return EmbedResponse{}, scheduleError(req.Model, err)
	}
	defer free()
	if err := s.clock.Sleep(ctx, s.sim.get().FirstTokenDelay.std()); err != nil {
		return EmbedResponse{}, scheduleError(req.Model, err)
	}

	resp := EmbedResponse{Model: req.Model, Embeddings: make([][]float32, len(input))}
	dims := m.embeddingLength()
	for i, text := range input {
		v := embedding(m.name.String(), text, dims)
		if req.Dimensions > 0 && req.Dimensions < len(v) {
			v = normalize(v[:req.Dimensions])
		}
		resp.Embeddings[i] = v
		resp.PromptEvalCount += embedTokens(text)
	}
	s.stats.addPromptTokens(resp.PromptEvalCount)
	resp.LoadDuration = max(loaded.Sub(start), time.Microsecond)
	resp.TotalDuration = max(s.clock.Now().Sub(start), resp.LoadDuration)
	return resp, nil
}

func (s *server) handleEmbed(w http.ResponseWriter, r *http.Request) error {
	var req EmbedRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	resp, err := s.embed(r, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// handleEmbeddings is the legacy /api/embeddings.
func (s *server) handleEmbeddings(w http.ResponseWriter, r *http.Request) error {
	var req EmbeddingRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	n := parseName(req.Model)
	if !n.valid() {
		return errorf(http.StatusBadRequest, "model is required")
	}
	m, err := s.store.model(s.store.resolve(n))
	if err != nil {
		return scheduleError(req.Model, err)
	}
	s.stats.servedModel(r, m.name.short())
	rn, err := s.sched.acquire(r.Context(), m, keepAliveOf(req.KeepAlive), intOption(req.Options, "num_ctx"))
	if err != nil {
		return scheduleError(req.Model, err)
	}
	defer s.sched.release(rn)
	if req.Prompt == "" {
		writeJSON(w, http.StatusOK, EmbeddingResponse{Embedding: []float64{}})
		return nil
	}
	free, err := rn.slot(r.Context())
	if err != nil {
		return scheduleError(req.Model, err)
	}
	defer free()
	if err := s.clock.Sleep(r.Context(), s.sim.get().FirstTokenDelay.std()); err != nil {
		return scheduleError(req.Model, err)
	}
	v := embedding(m.name.String(), req.Prompt, m.embeddingLength())
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	s.stats.addPromptTokens(embedTokens(req.Prompt))
	writeJSON(w, http.StatusOK, EmbeddingResponse{Embedding: out})
	return nil
}

func (s *server) handleTags(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.store.manifests()
	if err != nil {
		return err
	}
	models := []ListModelResponse{}
	for _, mf := range ms {
		var cfg configV2
		if mf.Config.Digest != "" {
			data, err := s.store.readBlob(mf.Config.Digest)
			if err != nil {
				s.log.Warn("bad manifest filepath", "name", mf.name, "error", err)
				continue
			}
			if err := json.Unmarshal(data, &cfg); err != nil {
				s.log.Warn("bad manifest config", "name", mf.name, "error", err)
				continue
			}
		}
		models = append(models, ListModelResponse{
			Name:       mf.name.short(),
			Model:      mf.name.short(),
			ModifiedAt: mf.modified,
			Size:       mf.size(),
			Digest:     mf.digest,
			Details: ModelDetails{
				Format:            cfg.ModelFormat,
				Family:            cfg.ModelFamily,
				Families:          cfg.ModelFamilies,
				ParameterSize:     cfg.ModelType,
				QuantizationLevel: cfg.FileType,
			},
		})
	}
	// Most recently modified first, as Ollama sorts; ties by name.
	slices.SortStableFunc(models, func(a, b ListModelResponse) int {
		return cmp.Or(cmp.Compare(b.ModifiedAt.Unix(), a.ModifiedAt.Unix()), cmp.Compare(a.Name, b.Name))
	})
	writeJSON(w, http.StatusOK, ListResponse{Models: models})
	return nil
}

func (s *server) handlePs(w http.ResponseWriter, r *http.Request) error {
	models := []ProcessModelResponse{}
	for _, l := range s.sched.list() {
		models = append(models, ProcessModelResponse{
			Name:          l.model.name.short(),
			Model:         l.model.name.short(),
			Size:          l.size,
			Digest:        l.model.digest,
			Details:       l.model.details(),
			ExpiresAt:     l.expiresAt,
			SizeVRAM:      l.vram,
			ContextLength: l.numCtx,
		})
	}
	writeJSON(w, http.StatusOK, ProcessResponse{Models: models})
	return nil
}

func (s *server) handleShow(w http.ResponseWriter, r *http.Request) error {
	var req ShowRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	resp, err := s.show(req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// show is Ollama's GetModelInfo with its handler's error mapping.
func (s *server) show(req ShowRequest) (*ShowResponse, error) {
	if req.Model == "" {
		req.Model = req.Name
	}
	if req.Model == "" {
		return nil, errorf(http.StatusBadRequest, "model is required")
	}
	n := parseName(req.Model)
	if !n.valid() {
		return nil, errorf(http.StatusInternalServerError, "unqualified name: %s", n)
	}
	m, err := s.store.model(s.store.resolve(n))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(http.StatusNotFound, "model '%s' not found", req.Model)
	} else if err != nil {
		return nil, err
	}
	system := m.system
	if req.System != "" {
		system = req.System
	}
	info := map[string]any{}
	for k, v := range m.kv {
		if a, ok := v.([]any); ok && len(a) > 5 && !req.Verbose {
			v = []any{}
		}
		info[k] = v
	}
	return &ShowResponse{
		License:      strings.Join(m.license, "\n"),
		Modelfile:    modelfile(m, system),
		Parameters:   parameters(m.params),
		Template:     m.templateText(),
		System:       system,
		Details:      m.details(),
		ModelInfo:    info,
		Capabilities: m.capabilities(),
		ModifiedAt:   m.modified,
	}, nil
}

// parameters formats the params layer as /api/show does: one line per
// value, the key padded to 30 columns, the value in Go syntax.
func parameters(params map[string]any) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		switch v := params[k].(type) {
		case []any:
			for _, e := range v {
				lines = append(lines, fmt.Sprintf("%-*s %#v", 30, k, e))
			}
		default:
			lines = append(lines, fmt.Sprintf("%-*s %#v", 30, k, v))
		}
	}
	return strings.Join(lines, "\n")
}

// modelfile renders the model the way `ollama show --modelfile` does.
func modelfile(m *localModel, system string) string {
	var b strings.Builder
	b.WriteString("# Modelfile generated by \"ollama show\"\n")
	b.WriteString("# To build a new Modelfile based on this, replace FROM with:\n")
	fmt.Fprintf(&b, "# FROM %s\n\n", m.name.short())
	fmt.Fprintf(&b, "FROM %s\n", m.modelPath)
	fmt.Fprintf(&b, "TEMPLATE \"\"\"%s\"\"\"\n", m.templateText())
	if system != "" {
		fmt.Fprintf(&b, "SYSTEM \"\"\"%s\"\"\"\n", system)
	}
	keys := make([]string, 0, len(m.params))
	for k := range m.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals, ok := m.params[k].([]any)
		if !ok {
			vals = []any{m.params[k]}
		}
		for _, v := range vals {
			fmt.Fprintf(&b, "PARAMETER %s %v\n", k, v)
		}
	}
	for _, l := range m.license {
		fmt.Fprintf(&b, "LICENSE \"\"\"%s\"\"\"\n", l)
	}
	return b.String()
}

func (s *server) handleDelete(w http.ResponseWriter, r *http.Request) error {
	var req DeleteRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	ref := cmp.Or(req.Model, req.Name)
	n := parseName(ref)
	if !n.valid() {
		return errorf(http.StatusBadRequest, "name %q is invalid", ref)
	}
	err := s.store.remove(s.store.resolve(n))
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, "model '%s' not found", ref)
	}
	return err
}

func (s *server) handleCopy(w http.ResponseWriter, r *http.Request) error {
	var req CopyRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	src := parseName(req.Source)
	if !src.valid() {
		return errorf(http.StatusBadRequest, "source %q is invalid", req.Source)
	}
	dst := parseName(req.Destination)
	if !dst.valid() {
		return errorf(http.StatusBadRequest, "destination %q is invalid", req.Destination)
	}
	err := s.store.copy(s.store.resolve(src), s.store.resolve(dst))
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, "model %q not found", req.Source)
	}
	return err
}
