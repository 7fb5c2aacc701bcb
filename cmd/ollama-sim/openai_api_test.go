package main

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"net/http"
	"strings"
	"testing"
)

func TestChatCompletionsStream(t *testing.T) {
	ts := startSim(t)
	for _, includeUsage := range []bool{false, true} {
		body := with(userChat("llama3.2:1b", "hello world"), "stream", true, "max_tokens", 3)
		if includeUsage {
			body["stream_options"] = map[string]any{"include_usage": true}
		}
		resp := ts.do(t, http.MethodPost, "/v1/chat/completions", body)
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type %q", ct)
		}
		events := sseEvents(t, readAll(t, resp))
		want := 3 + 1 + 1 // tokens, finish chunk, [DONE]
		if includeUsage {
			want++
		}
		if len(events) != want || events[len(events)-1] != "[DONE]" {
			t.Fatalf("include_usage=%v: events %q", includeUsage, events)
		}
		var id string
		for i, ev := range events[:len(events)-1] {
			var c oaiChatChunk
			strictDecode(t, []byte(ev), &c)
			if c.Object != "chat.completion.chunk" || c.Model != "llama3.2:1b" || c.SystemFingerprint != "fp_ollama" || !strings.HasPrefix(c.ID, "chatcmpl-") {
				t.Errorf("chunk %d: %s", i, ev)
			}
			if id == "" {
				id = c.ID
			} else if c.ID != id {
				t.Errorf("chunk ids differ: %s, %s", id, c.ID)
			}
			switch {
			case i < 3:
				if len(c.Choices) != 1 || c.Choices[0].Delta.Content != tokenText(i) || c.Choices[0].Delta.Role != "assistant" || c.Choices[0].FinishReason != nil || c.Usage != nil {
					t.Errorf("token chunk %d: %s", i, ev)
				}
			case i == 3:
				if len(c.Choices) != 1 || c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "length" || c.Choices[0].Delta.Content != "" || c.Usage != nil {
					t.Errorf("finish chunk: %s", ev)
				}
			default:
				if c.Choices == nil || len(c.Choices) != 0 || c.Usage == nil || *c.Usage != (oaiUsage{PromptTokens: 6, CompletionTokens: 3, TotalTokens: 9}) {
					t.Errorf("usage chunk: %s", ev)
				}
				if !strings.Contains(ev, `"choices":[]`) {
					t.Errorf("usage chunk must carry an empty choices list: %s", ev)
				}
			}
		}
	}
}

func TestChatCompletionsNonStream(t *testing.T) {
	ts := startSim(t)
	for _, key := range []string{"max_tokens", "max_completion_tokens"} {
		var c oaiChatCompletion
		ts.call(t, http.MethodPost, "/v1/chat/completions", with(userChat("llama3.2:1b", "hello world"), key, 2), 200, &c)
		if c.Object != "chat.completion" || c.Model != "llama3.2:1b" || len(c.Choices) != 1 ||
			c.Choices[0].Message.Content != "alpha bravo " || c.Choices[0].Message.Role != "assistant" ||
			*c.Choices[0].FinishReason != "length" || c.Usage != (oaiUsage{6, 2, 8}) {
			t.Errorf("%s: %+v", key, c)
		}
	}
	var c oaiChatCompletion
	ts.call(t, http.MethodPost, "/v1/chat/completions", userChat("llama3.2:1b", "hi"), 200, &c)
	if *c.Choices[0].FinishReason != "stop" || c.Usage.CompletionTokens != 16 {
		t.Errorf("default: %+v", c)
	}
}

func TestCompletions(t *testing.T) {
	ts := startSim(t)
	resp := ts.do(t, http.MethodPost, "/v1/completions", map[string]any{
		"model": "llama3.2:1b", "prompt": "hello world", "stream": true, "max_tokens": 2,
		"stream_options": map[string]any{"include_usage": true},
	})
	events := sseEvents(t, readAll(t, resp))
	if len(events) != 5 || events[4] != "[DONE]" {
		t.Fatalf("events %q", events)
	}
	for i, ev := range events[:4] {
		var c oaiCompletionChunk
		strictDecode(t, []byte(ev), &c)
		if c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") || c.Usage == nil {
			t.Errorf("chunk %d: %s", i, ev)
		}
		switch i {
		case 0, 1:
			if c.Choices[0].Text != tokenText(i) || *c.Usage != (oaiUsage{}) {
				t.Errorf("chunk %d: %s", i, ev)
			}
		case 2:
			if *c.Choices[0].FinishReason != "length" || *c.Usage != (oaiUsage{}) {
				t.Errorf("finish chunk: %s", ev)
			}
		case 3:
			if len(c.Choices) != 0 || *c.Usage != (oaiUsage{6, 2, 8}) {
				t.Errorf("usage chunk: %s", ev)
			}
		}
	}

	var c oaiCompletion
	ts.call(t, http.MethodPost, "/v1/completions", map[string]any{"model": "llama3.2:1b", "prompt": "hello world", "max_tokens": 4}, 200, &c)
	if c.Object != "text_completion" || c.Choices[0].Text != generatedText(4) || c.Usage != (oaiUsage{6, 4, 10}) {
		t.Errorf("non-stream %+v", c)
	}
}

func TestOpenAIErrors(t *testing.T) {
	ts := startSim(t)
	tests := []struct {
		method, path string
		body         any
		status       int
		typ, msg     string
	}{
		{"POST", "/v1/chat/completions", userChat("nope", "hi"), 404, "api_error", "model 'nope' not found"},
		{"POST", "/v1/chat/completions", map[string]any{"model": "llama3.2:1b", "messages": []any{}}, 400, "invalid_request_error", "[] is too short - 'messages'"},
		{"POST", "/v1/chat/completions", "{", 400, "invalid_request_error", "unexpected EOF"},
		{"POST", "/v1/chat/completions", map[string]any{"model": "llama3.2:1b", "messages": []any{map[string]any{"role": "user"}}}, 400, "invalid_request_error", "invalid message content type: <nil>"},
		{"POST", "/v1/completions", map[string]any{"model": "nope", "prompt": "x"}, 404, "api_error", "model 'nope' not found"},
		{"POST", "/v1/completions", map[string]any{"model": "llama3.2:1b", "prompt": "x", "stop": []any{1}}, 400, "invalid_request_error", "invalid type for 'stop' field: float64"},
		{"POST", "/v1/embeddings", map[string]any{"model": "nope", "input": "x"}, 404, "api_error", "model 'nope' not found"},
		{"POST", "/v1/embeddings", map[string]any{"model": "llama3.2:1b", "input": []any{}}, 400, "invalid_request_error", "invalid input"},
		{"POST", "/v1/embeddings", map[string]any{"model": "llama3.2:1b", "input": "x", "encoding_format": "hex"}, 400, "invalid_request_error", "Invalid value for 'encoding_format' = hex. Supported values: ['float', 'base64']."},
		{"GET", "/v1/models/nope", nil, 404, "api_error", "model 'nope' not found"},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.msg, func(t *testing.T) {
			var e oaiError
			ts.call(t, tt.method, tt.path, tt.body, tt.status, &e)
			if e.Error.Type != tt.typ || e.Error.Message != tt.msg || e.Error.Param != nil || e.Error.Code != nil {
				t.Errorf("error %+v, want %s %q", e.Error, tt.typ, tt.msg)
			}
		})
	}
}

func TestOpenAIModels(t *testing.T) {
	ts := startSim(t)
	var list oaiModelList
	ts.call(t, http.MethodGet, "/v1/models", nil, 200, &list)
	if list.Object != "list" || len(list.Data) != 2 {
		t.Fatalf("list %+v", list)
	}
	for _, m := range list.Data {
		if m.Object != "model" || m.OwnedBy != "library" || m.Created == 0 {
			t.Errorf("model %+v", m)
		}
	}
	var m oaiModel
	ts.call(t, http.MethodGet, "/v1/models/qwen2.5:0.5b", nil, 200, &m)
	if m.ID != "qwen2.5:0.5b" || m.Object != "model" || m.OwnedBy != "library" || m.Created == 0 {
		t.Errorf("retrieve %+v", m)
	}

	empty := startSim(t, withConfig(func(c *config) { c.Presets = nil }))
	resp := empty.do(t, http.MethodGet, "/v1/models", nil)
	if body := string(readAll(t, resp)); body != `{"object":"list","data":null}`+"\n" {
		t.Errorf("empty list %q (Ollama writes data: null)", body)
	}
}

func TestOpenAIEmbeddings(t *testing.T) {
	ts := startSim(t)
	var list oaiEmbeddingList
	ts.call(t, http.MethodPost, "/v1/embeddings", map[string]any{"model": "qwen2.5:0.5b", "input": []string{"a b", "c"}}, 200, &list)
	if list.Object != "list" || list.Model != "qwen2.5:0.5b" || len(list.Data) != 2 || list.Usage.PromptTokens != 4+3 || list.Usage.TotalTokens != 7 {
		t.Fatalf("list %+v", list)
	}
	floats, ok := list.Data[1].Embedding.([]any)
	if !ok || len(floats) != 896 || list.Data[1].Index != 1 || list.Data[1].Object != "embedding" {
		t.Fatalf("data[1] %+v", list.Data[1])
	}

	var b64 oaiEmbeddingList
	ts.call(t, http.MethodPost, "/v1/embeddings", map[string]any{"model": "qwen2.5:0.5b", "input": "c", "encoding_format": "base64", "dimensions": 4}, 200, &b64)
	s, ok := b64.Data[0].Embedding.(string)
	if !ok {
		t.Fatalf("base64 embedding %T", b64.Data[0].Embedding)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != 16 {
		t.Fatalf("base64 %q: %v", s, err)
	}
	want := normalize(embedding("registry.ollama.ai/library/qwen2.5:0.5b", "c", 896)[:4])
	for i := range 4 {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:])); got != want[i] {
			t.Errorf("dim %d = %v, want %v", i, got, want[i])
		}
	}
}
