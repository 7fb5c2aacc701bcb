package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// route says how the gateway treats one path.
type route struct {
	name    string // the path, for metrics
	dialect dialect
	kind    routeKind
	// streamDefault is the API's default for "stream" when the body omits
	// it: true for Ollama's chat and generate, false for OpenAI's.
	streamDefault bool
	sse           bool // streams as SSE (else NDJSON)
	// events names the API whose SSE events carry their type in an
	// "event:" line (the Responses and Messages APIs); zero for OpenAI's
	// data-only chunks and NDJSON.
	events eventAPI
}

type routeKind int

const (
	kindModel     routeKind = iota // POST with a model: balanced
	kindTags                       // GET /api/tags: union
	kindPS                         // GET /api/ps: union
	kindModels                     // GET /v1/models: union
	kindModelInfo                  // GET /v1/models/{model}
	kindVersion                    // GET /api/version: any healthy instance
	kindForbidden                  // model management: not through the gateway
)

var routes = map[string]route{
	"/v1/chat/completions": {dialect: dialectOpenAI, kind: kindModel, sse: true},
	"/v1/completions":      {dialect: dialectOpenAI, kind: kindModel, sse: true},
	"/v1/embeddings":       {dialect: dialectOpenAI, kind: kindModel},
	"/v1/responses":        {dialect: dialectOpenAI, kind: kindModel, sse: true, events: eventsResponses},
	"/v1/messages":         {dialect: dialectAnthropic, kind: kindModel, sse: true, events: eventsMessages},
	"/v1/models":           {dialect: dialectOpenAI, kind: kindModels},
	"/api/chat":            {dialect: dialectOllama, kind: kindModel, streamDefault: true},
	"/api/generate":        {dialect: dialectOllama, kind: kindModel, streamDefault: true},
	"/api/embed":           {dialect: dialectOllama, kind: kindModel},
	"/api/embeddings":      {dialect: dialectOllama, kind: kindModel},
	"/api/show":            {dialect: dialectOllama, kind: kindModel},
	"/api/tags":            {dialect: dialectOllama, kind: kindTags},
	"/api/ps":              {dialect: dialectOllama, kind: kindPS},
	"/api/version":         {dialect: dialectOllama, kind: kindVersion},
	"/api/pull":            {dialect: dialectOllama, kind: kindForbidden},
	"/api/push":            {dialect: dialectOllama, kind: kindForbidden},
	"/api/delete":          {dialect: dialectOllama, kind: kindForbidden},
	"/api/create":          {dialect: dialectOllama, kind: kindForbidden},
	"/api/copy":            {dialect: dialectOllama, kind: kindForbidden},
}

// modelRequest is the little the gateway reads of a body. Parsing it also
// validates the whole body as JSON before anything is forwarded.
type modelRequest struct {
	Model  string `json:"model"`
	Stream *bool  `json:"stream"`
	// Ollama's /api/embeddings and /api/show accept "name" in older clients.
	Name string `json:"name"`
	// What a request may generate, for quota reservations.
	MaxTokens           *int `json:"max_tokens"` // OpenAI's older field, and Anthropic's
	MaxCompletionTokens *int `json:"max_completion_tokens"`
	MaxOutputTokens     *int `json:"max_output_tokens"` // the Responses API's
	Options             struct {
		NumPredict *int `json:"num_predict"`
	} `json:"options"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	User string `json:"user"` // OpenAI's end-user field
}

// maxTokens is the most the request may generate, or 0 when unbounded.
func (m modelRequest) maxTokens() int {
	for _, p := range []*int{m.MaxCompletionTokens, m.MaxTokens, m.MaxOutputTokens, m.Options.NumPredict} {
		if p != nil && *p > 0 {
			return *p
		}
	}
	return 0
}

// endUser names who is asking: a chat UI's forwarded user headers (Open
// WebUI sends X-OpenWebUI-User-*), else the OpenAI "user" field.
func endUser(r *http.Request, m modelRequest) string {
	if r.Context().Value(trustKey{}) != nil {
		// In the header map's canonical form, which Get then need not make.
		for _, h := range []string{"X-Openwebui-User-Email", "X-Openwebui-User-Name", "X-Openwebui-User-Id"} {
			if v := r.Header.Get(h); v != "" {
				return v
			}
		}
	}
	return m.User
}

type trustKey struct{}

// TrustUserHeaders marks the requests of corral's internal listener,
// which only the chat UI's network reaches: their forwarded user fields
// (Open WebUI's X-OpenWebUI-User-*) are believed. Anywhere else a client
// could name any user, so only the OpenAI user field counts there.
func TrustUserHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), trustKey{}, true)))
	})
}

// withUsage asks an OpenAI-dialect stream for its usage chunk, which is
// where exact counts come from; the chunk is removed on the way back when
// the client did not ask for it. The body was validated as an object.
// Without a stream_options key the field is spliced in, so a large body
// (images come base64) is copied once, not decoded and re-encoded.
func withUsage(body []byte) []byte {
	if !bytes.Contains(body, []byte(`"stream_options"`)) {
		i := bytes.IndexByte(body, '{')
		if i < 0 {
			return body
		}
		rest := body[i+1:]
		field := `"stream_options":{"include_usage":true}`
		if t := bytes.TrimSpace(rest); len(t) == 0 || t[0] != '}' {
			field += ","
		}
		out := make([]byte, 0, len(body)+len(field))
		out = append(append(append(out, body[:i+1]...), field...), rest...)
		return out
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return body
	}
	obj["stream_options"] = json.RawMessage(`{"include_usage":true}`)
	out, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return out
}

// readBody reads the whole request body, stopping at limit while it
// reads: the buffer grows with what arrives, never from what
// Content-Length announces. Reading it all first also avoids Go's HTTP/1
// server closing a body still being forwarded (golang/go#40747), lets a
// retry resend it, and, once it is read to its end, lets net/http see the
// client leave, which cancels the request.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 {
		// Trusted only as far as a first buffer goes.
		buf.Grow(int(min(n, initialBodyBuffer)))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge(limit)
	}
	if err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Message: "reading request body: " + err.Error(), Code: "invalid_body"}
	}
	return buf.Bytes(), nil
}

// initialBodyBuffer is the most a body's announced length may reserve
// before its bytes arrive.
const initialBodyBuffer = 256 << 10

func tooLarge(limit int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body is larger than %s: send less, or raise corral's --max-body", sizeText(limit)), Code: "request_too_large"}
}

// sizeText is a byte count as a person reads it.
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func parseModelRequest(body []byte) (modelRequest, *apiError) {
	var m modelRequest
	if len(body) == 0 {
		return m, &apiError{Status: http.StatusBadRequest, Message: "request body is empty: send a JSON object with a \"model\""}
	}
	m, fast := scanModelRequest(body)
	if !fast {
		m = modelRequest{}
		if err := json.Unmarshal(body, &m); err != nil {
			return m, &apiError{Status: http.StatusBadRequest, Message: "request body is not valid JSON: " + err.Error(), Code: "invalid_json"}
		}
	}
	if m.Model == "" {
		m.Model = m.Name
	}
	if m.Model == "" {
		return m, &apiError{Status: http.StatusBadRequest, Message: "\"model\" is required", Param: "model", Code: "missing_model"}
	}
	return m, nil
}

// estimatePromptTokens guesses a prompt's size from its text, at four
// characters a token, for a stream whose own counts never came. Only text
// counts: an image's share depends on the model, and its base64 size
// would overstate it many times. It reads every API's fields: messages
// (chat, Anthropic), prompt and system (Ollama; Anthropic's system may be
// a list of blocks), input and instructions (the Responses API).
func estimatePromptTokens(body []byte) int {
	var req struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		Prompt       json.RawMessage `json:"prompt"`
		System       json.RawMessage `json:"system"`
		Input        json.RawMessage `json:"input"`
		Instructions json.RawMessage `json:"instructions"`
	}
	if json.Unmarshal(body, &req) != nil {
		return 0
	}
	chars := textLen(req.System, 0) + textLen(req.Prompt, 0) + textLen(req.Input, 0) + textLen(req.Instructions, 0)
	for _, m := range req.Messages {
		chars += textLen(m.Content, 0)
	}
	return (chars + 3) / 4
}

// textLen is the length of the text in a content, prompt or input field:
// a string, a list of strings, or a list of parts ({"type":"text","text":…},
// or a Responses API input item whose "content" is one of these in turn).
func textLen(raw json.RawMessage, depth int) int {
	if len(raw) == 0 || depth > 2 {
		return 0
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return len(s)
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return 0
	}
	n := 0
	for _, p := range parts {
		var part struct {
			Text    string          `json:"text"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(p, &s) == nil {
			n += len(s)
		} else if json.Unmarshal(p, &part) == nil {
			n += len(part.Text) + textLen(part.Content, depth+1)
		}
	}
	return n
}
