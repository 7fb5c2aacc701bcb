package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// chatRequest is what a test posts to /chat. User is an email address;
// the optional fields override what is derived from it.
type chatRequest struct {
	Model    string `json:"model"`
	User     string `json:"user"`
	Prompt   string `json:"prompt"`
	UserID   string `json:"user_id"`
	UserName string `json:"user_name"`
	UserRole string `json:"user_role"`
}

// upstreamChat is the body sent to {base}/chat/completions.
type upstreamChat struct {
	Model    string            `json:"model"`
	Stream   bool              `json:"stream"`
	Messages []upstreamMessage `json:"messages"`
}

type upstreamMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Limits on what is read back from the upstream outside a stream, and on
// one line of a stream.
const (
	maxUpstreamBody = 4 << 20
	maxSSELine      = 1 << 20
)

// handleChat makes a streamed chat completion upstream, the way Open WebUI
// does with ENABLE_FORWARD_USER_INFO_HEADERS, and relays the events as
// they arrive, flushing each. A non-200 answer is passed through.
func (s *server) handleChat(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "decode body: "+err.Error())
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	up, err := json.Marshal(upstreamChat{
		Model:    req.Model,
		Stream:   true,
		Messages: []upstreamMessage{{Role: "user", Content: req.Prompt}},
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.UpstreamTimeout)
	defer cancel()
	resp, ok := s.upstream(ctx, w, http.MethodPost, "/chat/completions", up, func(h http.Header) {
		h.Set("Content-Type", "application/json")
		h.Set("Accept", "text/event-stream")
		userHeaders(h, req)
	})
	if !ok {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		passThrough(w, resp)
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	events, err := relayEvents(resp.Body, w, rc.Flush)
	if err != nil {
		s.log.Info("chat stream ended early", "model", req.Model, "events", events, "err", err)
	}
}

// relayEvents copies SSE events from src to dst, one event (lines up to a
// blank line) at a time, calling flush after each. Line ends become "\n".
// It returns the number of events written.
func relayEvents(src io.Reader, dst io.Writer, flush func() error) (int, error) {
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 0, 64<<10), maxSSELine)
	var event bytes.Buffer
	events := 0
	emit := func() error {
		event.WriteByte('\n')
		if _, err := dst.Write(event.Bytes()); err != nil {
			return err
		}
		event.Reset()
		events++
		return flush()
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if event.Len() == 0 {
				continue
			}
			if err := emit(); err != nil {
				return events, err
			}
			continue
		}
		event.Write(line)
		event.WriteByte('\n')
	}
	if event.Len() > 0 {
		if err := emit(); err != nil {
			return events, err
		}
	}
	return events, sc.Err()
}

// userHeaders sets Open WebUI's forwarded user headers. Without a user it
// sets none, as Open WebUI with the forwarding turned off.
func userHeaders(h http.Header, req chatRequest) {
	if req.User == "" && req.UserID == "" && req.UserName == "" {
		return
	}
	name := req.UserName
	if name == "" {
		name, _, _ = strings.Cut(req.User, "@")
	}
	id := req.UserID
	if id == "" {
		id = userID(req.User)
	}
	userRole := req.UserRole
	if userRole == "" {
		userRole = "user"
	}
	h.Set("X-OpenWebUI-User-Name", name)
	h.Set("X-OpenWebUI-User-Id", id)
	h.Set("X-OpenWebUI-User-Email", req.User)
	h.Set("X-OpenWebUI-User-Role", userRole)
}

// userID is a stable UUID-shaped ID for an email address, like the UUIDs
// Open WebUI gives its users: the first 16 bytes of its SHA-256, with the
// version 8 (custom) and RFC 9562 variant bits.
func userID(email string) string {
	sum := sha256.Sum256([]byte(email))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// handleModels passes GET {base}/models through, as LobeChat fetches the
// model list.
func (s *server) handleModels(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.UpstreamTimeout)
	defer cancel()
	resp, ok := s.upstream(ctx, w, http.MethodGet, "/models", nil, func(h http.Header) {
		h.Set("Accept", "application/json")
	})
	if !ok {
		return
	}
	defer resp.Body.Close()
	passThrough(w, resp)
}

// upstream sends a request to the configured base URL with the key. On
// failure it has answered 503 (nothing configured) or 502 and returns
// false.
func (s *server) upstream(ctx context.Context, w http.ResponseWriter, method, path string, body []byte, header func(http.Header)) (*http.Response, bool) {
	if s.cfg.UpstreamBase == "" {
		writeError(w, http.StatusServiceUnavailable, s.cfg.UpstreamVar+" is not set")
		return nil, false
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.cfg.UpstreamBase+path, rd)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return nil, false
	}
	if s.cfg.UpstreamKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.UpstreamKey)
	}
	header(req.Header)
	resp, err := s.client.Do(req)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		s.log.Info("upstream failed", "method", method, "url", req.URL.String(), "err", err)
		writeError(w, status, "upstream: "+err.Error())
		return nil, false
	}
	return resp, true
}

// passThrough copies an upstream answer's status, content type and body,
// up to maxUpstreamBody bytes.
func passThrough(w http.ResponseWriter, resp *http.Response) {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxUpstreamBody))
}
