package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Mirrors of Ollama's Responses and Messages answers (openai/responses.go
// and anthropic/anthropic.go, v0.17.4), every field it writes.

type respUsage struct {
	InputTokens        int `json:"input_tokens"`
	OutputTokens       int `json:"output_tokens"`
	TotalTokens        int `json:"total_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
}

type respContent struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
	Logprobs    []any  `json:"logprobs"`
}

type respItem struct {
	ID      string        `json:"id"`
	Type    string        `json:"type"`
	Status  string        `json:"status,omitempty"`
	Role    string        `json:"role,omitempty"`
	Content []respContent `json:"content,omitempty"`
}

type respObject struct {
	ID                 string     `json:"id"`
	Object             string     `json:"object"`
	CreatedAt          int64      `json:"created_at"`
	CompletedAt        *int64     `json:"completed_at"`
	Status             string     `json:"status"`
	IncompleteDetails  any        `json:"incomplete_details"`
	Model              string     `json:"model"`
	PreviousResponseID *string    `json:"previous_response_id"`
	Instructions       *string    `json:"instructions"`
	Output             []respItem `json:"output"`
	Error              any        `json:"error"`
	Tools              []any      `json:"tools"`
	ToolChoice         any        `json:"tool_choice"`
	Truncation         string     `json:"truncation"`
	ParallelToolCalls  bool       `json:"parallel_tool_calls"`
	Text               struct {
		Format struct {
			Type string `json:"type"`
		} `json:"format"`
	} `json:"text"`
	TopP             float64        `json:"top_p"`
	PresencePenalty  float64        `json:"presence_penalty"`
	FrequencyPenalty float64        `json:"frequency_penalty"`
	TopLogprobs      int            `json:"top_logprobs"`
	Temperature      float64        `json:"temperature"`
	Reasoning        any            `json:"reasoning"`
	Usage            *respUsage     `json:"usage"`
	MaxOutputTokens  *int           `json:"max_output_tokens"`
	MaxToolCalls     *int           `json:"max_tool_calls"`
	Store            bool           `json:"store"`
	Background       bool           `json:"background"`
	ServiceTier      string         `json:"service_tier"`
	Metadata         map[string]any `json:"metadata"`
	SafetyIdentifier *string        `json:"safety_identifier"`
	PromptCacheKey   *string        `json:"prompt_cache_key"`
}

type anthMessage struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Role    string `json:"role"`
	Model   string `json:"model"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StopReason   string `json:"stop_reason,omitempty"`
	StopSequence string `json:"stop_sequence,omitempty"`
	Usage        struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

type namedEvent struct{ name, data string }

// namedEventsOf splits an SSE body of named events.
func namedEventsOf(t *testing.T, body []byte) []namedEvent {
	t.Helper()
	var out []namedEvent
	for _, ev := range strings.Split(string(body), "\n\n") {
		if ev == "" {
			continue
		}
		name, data, ok := strings.Cut(ev, "\n")
		name, ok1 := strings.CutPrefix(name, "event: ")
		data, ok2 := strings.CutPrefix(data, "data: ")
		if !ok || !ok1 || !ok2 {
			t.Fatalf("bad SSE event %q", ev)
		}
		out = append(out, namedEvent{name, data})
	}
	return out
}

func TestResponses(t *testing.T) {
	ts := startSim(t)
	var r respObject
	ts.call(t, http.MethodPost, "/v1/responses", map[string]any{
		"model": "llama3.2:1b", "instructions": "be brief", "input": "hello world", "max_output_tokens": 2,
	}, 200, &r)
	// Prompt: two messages, (4+2) + (4+2) tokens.
	if r.Object != "response" || r.Status != "completed" || r.Model != "llama3.2:1b" || !strings.HasPrefix(r.ID, "resp_") ||
		r.CompletedAt == nil || *r.Instructions != "be brief" || len(r.Output) != 1 || r.Output[0].Content[0].Text != "alpha bravo " ||
		r.Usage == nil || r.Usage.InputTokens != 12 || r.Usage.OutputTokens != 2 || r.Usage.TotalTokens != 14 || *r.MaxOutputTokens != 2 {
		t.Fatalf("%+v", r)
	}

	resp := ts.do(t, http.MethodPost, "/v1/responses", map[string]any{
		"model": "llama3.2:1b", "stream": true, "max_output_tokens": 3,
		"input": []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "input_text", "text": "hello world"}}}},
	})
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	events := namedEventsOf(t, readAll(t, resp))
	var names []string
	for i, ev := range events {
		names = append(names, ev.name)
		var d struct {
			Type string `json:"type"`
			Seq  int    `json:"sequence_number"`
		}
		json.Unmarshal([]byte(ev.data), &d)
		if d.Type != ev.name || d.Seq != i {
			t.Errorf("event %d %s: %s", i, ev.name, ev.data)
		}
	}
	want := "response.created response.in_progress response.output_item.added response.content_part.added " +
		"response.output_text.delta response.output_text.delta response.output_text.delta " +
		"response.output_text.done response.content_part.done response.output_item.done response.completed"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events\n%s\nwant\n%s", got, want)
	}
	var done struct {
		Response respObject `json:"response"`
		Seq      int        `json:"sequence_number"`
		Type     string     `json:"type"`
	}
	strictDecode(t, []byte(events[len(events)-1].data), &done)
	if u := done.Response.Usage; u == nil || u.InputTokens != 6 || u.OutputTokens != 3 || done.Response.Output[0].Content[0].Text != "alpha bravo charlie " {
		t.Fatalf("completed: %s", events[len(events)-1].data)
	}

	// Errors: a bad request is typed, a missing model is Ollama's 404 as
	// an api_error, as its middleware writes handler errors.
	var e struct {
		Error OpenAIError `json:"error"`
	}
	ts.call(t, http.MethodPost, "/v1/responses", map[string]any{"model": "llama3.2:1b", "input": 5}, 400, &e)
	if e.Error.Type != "invalid_request_error" {
		t.Errorf("bad input: %+v", e)
	}
	ts.call(t, http.MethodPost, "/v1/responses", map[string]any{"model": "nope", "input": "x"}, 404, &e)
	if e.Error.Type != "api_error" || e.Error.Message != "model 'nope' not found" {
		t.Errorf("missing model: %+v", e)
	}
}

func TestMessages(t *testing.T) {
	ts := startSim(t)
	var m anthMessage
	ts.call(t, http.MethodPost, "/v1/messages", map[string]any{
		"model": "llama3.2:1b", "max_tokens": 2, "system": []any{map[string]any{"type": "text", "text": "be brief"}},
		"messages": []any{map[string]any{"role": "user", "content": "hello world"}},
	}, 200, &m)
	if m.Type != "message" || m.Role != "assistant" || !strings.HasPrefix(m.ID, "msg_") || len(m.Content) != 1 ||
		m.Content[0].Text != "alpha bravo " || m.StopReason != "max_tokens" || m.Usage.InputTokens != 12 || m.Usage.OutputTokens != 2 {
		t.Fatalf("%+v", m)
	}

	resp := ts.do(t, http.MethodPost, "/v1/messages", map[string]any{
		"model": "llama3.2:1b", "max_tokens": 3, "stream": true,
		"messages": []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hello world"}}}},
	})
	events := namedEventsOf(t, readAll(t, resp))
	var names []string
	for _, ev := range events {
		names = append(names, ev.name)
	}
	want := "message_start content_block_start content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events\n%s\nwant\n%s", got, want)
	}
	var start struct {
		Type    string      `json:"type"`
		Message anthMessage `json:"message"`
	}
	strictDecode(t, []byte(events[0].data), &start)
	// An estimate, as Ollama's: (len("user") + len("hello world")) / 4.
	if start.Message.Usage.InputTokens != 3 || start.Message.Usage.OutputTokens != 0 {
		t.Errorf("message_start: %s", events[0].data)
	}
	var delta struct {
		Type  string `json:"type"`
		Delta struct {
			StopReason string `json:"stop_reason,omitempty"`
		} `json:"delta"`
		Usage struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	}
	strictDecode(t, []byte(events[6].data), &delta)
	if delta.Usage.InputTokens != 6 || delta.Usage.OutputTokens != 3 || delta.Delta.StopReason != "max_tokens" {
		t.Errorf("message_delta: %s", events[6].data)
	}

	// Errors in Anthropic's shape, typed by status.
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	ts.call(t, http.MethodPost, "/v1/messages", map[string]any{"model": "llama3.2:1b", "messages": []any{map[string]any{"role": "user", "content": "x"}}}, 400, &e)
	if e.Type != "error" || e.Error.Type != "invalid_request_error" || e.Error.Message != "max_tokens is required and must be positive" {
		t.Errorf("no max_tokens: %+v", e)
	}
	ts.call(t, http.MethodPost, "/v1/messages", map[string]any{"model": "nope", "max_tokens": 5, "messages": []any{map[string]any{"role": "user", "content": "x"}}}, 404, &e)
	if e.Error.Type != "not_found_error" || e.Error.Message != "model 'nope' not found" {
		t.Errorf("missing model: %+v", e)
	}
}
