package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Ollama's Anthropic Messages API (POST /v1/messages), mirroring
// github.com/ollama/ollama/anthropic/anthropic.go and
// middleware/anthropic.go (v0.17.4): the request becomes a chat; the
// answer a message, or a stream of events in which message_start carries
// an estimate of the input tokens and message_delta the real counts.
// Errors have Anthropic's shape, their type following the status.

// MessagesRequest is the part of the body the simulator reads.
type MessagesRequest struct {
	Model     string          `json:"model"`
	MaxTokens int             `json:"max_tokens"`
	Messages  []MessageParam  `json:"messages"`
	System    json.RawMessage `json:"system,omitempty"`
	Stream    bool            `json:"stream,omitempty"`
	Tools     []any           `json:"tools,omitempty"`
}

// MessageParam is one message; content is a string or a list of blocks.
type MessageParam struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// anthropicErrorType is anthropic.NewError's type for a status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	}
	return "api_error"
}

// anthropicError is anthropic.ErrorResponse (Ollama's request_id is
// random; the simulator's is fixed).
func anthropicError(status int, msg string) map[string]any {
	return map[string]any{
		"type":       "error",
		"error":      map[string]any{"type": anthropicErrorType(status), "message": msg},
		"request_id": "req_ollamasim",
	}
}

// anthropicText is the text of a system field or a message's content: a
// string, or the text blocks of a list (images and tool blocks add none);
// tool results become messages of their own, as Ollama converts them.
func anthropicText(raw json.RawMessage) (text string, results []string, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, nil
	}
	if json.Unmarshal(raw, &text) == nil {
		return text, nil, nil
	}
	var blocks []struct {
		Type    string          `json:"type"`
		Text    string          `json:"text"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", nil, fmt.Errorf("invalid content block format")
	}
	var b strings.Builder
	for _, bl := range blocks {
		switch bl.Type {
		case "text":
			b.WriteString(bl.Text)
		case "tool_result":
			t, _, _ := anthropicText(bl.Content)
			results = append(results, t)
		}
	}
	return b.String(), results, nil
}

func (s *server) handleMessages(w http.ResponseWriter, r *http.Request) error {
	var req MessagesRequest
	if err := decodeOpenAI(r, &req); err != nil {
		return err
	}
	switch {
	case req.Model == "":
		return badRequest("model is required")
	case req.MaxTokens <= 0:
		return badRequest("max_tokens is required and must be positive")
	case len(req.Messages) == 0:
		return badRequest("messages is required")
	}
	var contents []string
	chars := 0 // for anthropic.EstimateInputTokens
	system, _, err := anthropicText(req.System)
	if err != nil {
		return badRequest("%s", err.Error())
	}
	if system != "" {
		contents = append(contents, system)
	}
	chars += len(system)
	for _, m := range req.Messages {
		text, results, err := anthropicText(m.Content)
		if err != nil {
			return badRequest("%s", err.Error())
		}
		contents = append(contents, results...)
		contents = append(contents, text)
		chars += len(m.Role) + len(text)
		for _, t := range results {
			chars += len(t)
		}
	}
	job := completionJob{
		chat:     true,
		model:    req.Model,
		contents: contents,
		stream:   req.Stream,
		options:  map[string]any{"num_predict": req.MaxTokens},
		tools:    len(req.Tools) > 0,
	}
	out := &messagesWire{s: s, w: w, sse: sse{w: w}, model: req.Model, stream: req.Stream,
		id: fmt.Sprintf("msg_%024d", s.nextID()), estimate: max(chars/4, 1)}
	return s.runCompletion(w, r, job, out)
}

// messagesWire writes /v1/messages answers.
type messagesWire struct {
	s        *server
	w        http.ResponseWriter
	sse      sse
	model    string
	stream   bool
	id       string
	estimate int // the input tokens message_start announces

	started     bool // message_start went out
	textStarted bool // the text block was opened
}

func (c *messagesWire) event(name string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return c.sse.raw(fmt.Sprintf("event: %s\ndata: %s\n\n", name, b))
}

func (c *messagesWire) message(content []any, stop string, input, output int) map[string]any {
	m := map[string]any{"id": c.id, "type": "message", "role": "assistant", "model": c.model, "content": content,
		"usage": map[string]any{"input_tokens": input, "output_tokens": output}}
	if stop != "" {
		m["stop_reason"] = stop
	}
	return m
}

// begin writes message_start; input is the prompt count when known (the
// first chunk is the last), else the estimate.
func (c *messagesWire) begin(input int) error {
	if c.started {
		return nil
	}
	c.started = true
	if input == 0 {
		input = c.estimate
	}
	return c.event("message_start", map[string]any{"type": "message_start", "message": c.message([]any{}, "", input, 0)})
}

func (c *messagesWire) token(text string) error {
	if err := c.begin(0); err != nil {
		return err
	}
	if !c.textStarted {
		c.textStarted = true
		if err := c.event("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "text", "text": ""}}); err != nil {
			return err
		}
	}
	return c.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
		"delta": map[string]any{"type": "text_delta", "text": text}})
}

// stopReason is anthropic.mapStopReason.
func stopReason(doneReason string) string {
	switch doneReason {
	case "stop":
		return "end_turn"
	case "length":
		return "max_tokens"
	case "":
		return ""
	}
	return "stop_sequence"
}

func (c *messagesWire) finish(f finished) error {
	m := f.metrics
	if !c.stream {
		var content []any
		if f.content != "" {
			content = append(content, map[string]any{"type": "text", "text": f.content})
		}
		c.w.Header().Set("Content-Type", "application/json")
		c.w.WriteHeader(http.StatusOK)
		return json.NewEncoder(c.w).Encode(c.message(content, stopReason(f.doneReason), m.PromptEvalCount, m.EvalCount))
	}
	if err := c.begin(m.PromptEvalCount); err != nil {
		return err
	}
	if c.textStarted {
		if err := c.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}); err != nil {
			return err
		}
	}
	delta := map[string]any{}
	if r := stopReason(f.doneReason); r != "" {
		delta["stop_reason"] = r
	}
	if err := c.event("message_delta", map[string]any{"type": "message_delta", "delta": delta,
		"usage": map[string]any{"input_tokens": m.PromptEvalCount, "output_tokens": m.EvalCount}}); err != nil {
		return err
	}
	return c.event("message_stop", map[string]any{"type": "message_stop"})
}
