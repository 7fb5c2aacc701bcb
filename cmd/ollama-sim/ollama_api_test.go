package main

import (
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestChatStreamShape(t *testing.T) {
	ts := startSim(t)
	resp := ts.do(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hello world"), "options", map[string]any{"num_predict": 3}))
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", ct)
	}
	lines := ndjsonLines(t, resp.Body)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), lines)
	}
	for i, line := range lines {
		var c apiChatResponse
		strictDecode(t, line, &c)
		var raw map[string]any
		if err := json.Unmarshal(line, &raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["done"]; !ok {
			t.Errorf("line %d has no done field: %s", i, line)
		}
		if c.Model != "llama3.2:1b" || c.Message.Role != "assistant" || c.CreatedAt.IsZero() {
			t.Errorf("line %d: %s", i, line)
		}
		if i < 3 {
			if c.Done || c.Message.Content != tokenText(i) || c.DoneReason != "" || c.EvalCount != 0 {
				t.Errorf("chunk %d: %s", i, line)
			}
			continue
		}
		if !c.Done || c.DoneReason != "length" || c.Message.Content != "" {
			t.Errorf("final: %s", line)
		}
		if c.PromptEvalCount != 6 || c.EvalCount != 3 {
			t.Errorf("counts: prompt %d eval %d, want 6 and 3", c.PromptEvalCount, c.EvalCount)
		}
		if c.TotalDuration <= 0 || c.LoadDuration <= 0 || c.PromptEvalDuration <= 0 || c.EvalDuration <= 0 {
			t.Errorf("durations must be positive: %s", line)
		}
	}
}

func TestChatNonStreamDefaultTokens(t *testing.T) {
	ts := startSim(t)
	var c apiChatResponse
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "one two three"), "stream", false), 200, &c)
	if !c.Done || c.DoneReason != "stop" || c.EvalCount != 16 || c.Message.Content != generatedText(16) {
		t.Errorf("got %+v", c)
	}
	if c.PromptEvalCount != 7 {
		t.Errorf("prompt_eval_count = %d, want 7", c.PromptEvalCount)
	}
}

func TestGenerateShapes(t *testing.T) {
	ts := startSim(t)
	resp := ts.do(t, http.MethodPost, "/api/generate", map[string]any{
		"model": "llama3.2:1b", "prompt": "hello world", "system": "be brief", "options": map[string]any{"num_predict": 2},
	})
	defer resp.Body.Close()
	lines := ndjsonLines(t, resp.Body)
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), lines)
	}
	var last apiGenerateResponse
	for i, line := range lines {
		var g apiGenerateResponse
		strictDecode(t, line, &g)
		if i < 2 && (g.Done || g.Response != tokenText(i)) {
			t.Errorf("chunk %d: %s", i, line)
		}
		last = g
	}
	// prompt: 2 words + 4, system: 2 words + 4.
	if !last.Done || last.PromptEvalCount != 12 || last.EvalCount != 2 || len(last.Context) != 14 {
		t.Errorf("final: %+v", last)
	}

	// The context comes back and counts as prompt.
	var g apiGenerateResponse
	ts.call(t, http.MethodPost, "/api/generate", map[string]any{
		"model": "llama3.2:1b", "prompt": "more", "stream": false, "context": last.Context, "options": map[string]any{"num_predict": 1},
	}, 200, &g)
	if g.PromptEvalCount != 14+5 || g.Response != "alpha " {
		t.Errorf("with context: %+v", g)
	}

	// Raw mode has no context.
	var raw apiGenerateResponse
	ts.call(t, http.MethodPost, "/api/generate", map[string]any{"model": "llama3.2:1b", "prompt": "x", "raw": true, "stream": false}, 200, &raw)
	if raw.Context != nil || !raw.Done {
		t.Errorf("raw answer has a context")
	}
}

func TestLoadAndUnload(t *testing.T) {
	clk := newFakeClock()
	ts := startSim(t, withClock(clk))
	tests := []struct {
		name       string
		path       string
		body       map[string]any
		wantReason string
		wantLoaded []string
		wantExpiry time.Duration
	}{
		{"chat load", "/api/chat", map[string]any{"model": "llama3.2:1b"}, "load", []string{"llama3.2:1b"}, 5 * time.Minute},
		{"generate load keep_alive", "/api/generate", map[string]any{"model": "qwen2.5:0.5b", "keep_alive": "10m"}, "load", []string{"qwen2.5:0.5b", "llama3.2:1b"}, 10 * time.Minute},
		{"chat unload", "/api/chat", map[string]any{"model": "llama3.2:1b", "keep_alive": 0}, "unload", []string{"qwen2.5:0.5b"}, 10 * time.Minute},
		{"generate unload", "/api/generate", map[string]any{"model": "qwen2.5:0.5b", "prompt": "", "keep_alive": "0s"}, "unload", nil, 0},
		{"load forever", "/api/chat", map[string]any{"model": "llama3.2:1b", "keep_alive": -1}, "load", []string{"llama3.2:1b"}, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(t, http.MethodPost, tt.path, tt.body)
			body := readAll(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var raw map[string]any
			if err := json.Unmarshal(body, &raw); err != nil {
				t.Fatal(err)
			}
			if raw["done"] != true || raw["done_reason"] != tt.wantReason {
				t.Errorf("answer %s", body)
			}
			if tt.path == "/api/chat" {
				var c apiChatResponse
				strictDecode(t, body, &c)
				if c.Message.Role != "assistant" {
					t.Errorf("message %+v", c.Message)
				}
			}
			var ps apiProcessResponse
			ts.call(t, http.MethodGet, "/api/ps", nil, 200, &ps)
			var names []string
			for _, m := range ps.Models {
				names = append(names, m.Name)
			}
			if !slices.Equal(names, tt.wantLoaded) {
				t.Fatalf("loaded %v, want %v", names, tt.wantLoaded)
			}
			if len(ps.Models) > 0 {
				if got := ps.Models[0].ExpiresAt.Sub(clk.Now()); got != tt.wantExpiry && tt.wantExpiry != math.MaxInt64 {
					t.Errorf("expires in %v, want %v", got, tt.wantExpiry)
				} else if tt.wantExpiry == math.MaxInt64 && ps.Models[0].ExpiresAt.Year() < 2200 {
					t.Errorf("forever expires at %v", ps.Models[0].ExpiresAt)
				}
			}
		})
	}
	if st := ts.stats(t); st.Loads != 3 || st.Unloads != 2 {
		t.Errorf("loads %d unloads %d", st.Loads, st.Unloads)
	}
}

func TestErrors(t *testing.T) {
	ts := startSim(t)
	tests := []struct {
		method, path string
		body         any
		status       int
		msg          string
	}{
		{"POST", "/api/chat", userChat("nope", "hi"), 404, "model 'nope' not found"},
		{"POST", "/api/chat", userChat("nope:7b", "hi"), 404, "model 'nope:7b' not found"},
		{"POST", "/api/generate", map[string]any{"model": "nope", "prompt": "hi"}, 404, "model 'nope' not found"},
		{"POST", "/api/embed", map[string]any{"model": "nope", "input": "hi"}, 404, "model 'nope' not found"},
		{"POST", "/api/embeddings", map[string]any{"model": "nope", "prompt": "hi"}, 404, `model "nope" not found, try pulling it first`},
		{"POST", "/api/show", map[string]any{"model": "nope"}, 404, "model 'nope' not found"},
		{"DELETE", "/api/delete", map[string]any{"model": "nope"}, 404, "model 'nope' not found"},
		{"POST", "/api/copy", map[string]any{"source": "nope", "destination": "other"}, 404, `model "nope" not found`},
		{"POST", "/api/chat", userChat("", "hi"), 400, "model is required"},
		{"POST", "/api/chat", "", 400, "missing request body"},
		{"POST", "/api/chat", "{", 400, "unexpected EOF"},
		{"POST", "/api/show", map[string]any{}, 400, "model is required"},
		{"DELETE", "/api/delete", map[string]any{"model": "bad name"}, 400, `name "bad name" is invalid`},
		{"POST", "/api/pull", map[string]any{"model": "bad name"}, 400, "invalid model name"},
		{"POST", "/api/embed", map[string]any{"model": "llama3.2:1b", "input": 3}, 400, "invalid input type"},
		{"POST", "/api/chat", with(userChat("llama3.2:1b", "hi"), "think", true), 400, `"llama3.2:1b" does not support thinking`},
		{"POST", "/api/generate", map[string]any{"model": "llama3.2:1b", "prompt": "x", "raw": true, "system": "s"}, 400, "raw mode does not support template, system, or context"},
		{"POST", "/api/chat", with(userChat("llama3.2:1b", "hi"), "keep_alive", true), 400, "Unsupported type: 'bool'"},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.msg, func(t *testing.T) {
			var e apiErrorBody
			ts.call(t, tt.method, tt.path, tt.body, tt.status, &e)
			if e.Error != tt.msg {
				t.Errorf("error %q, want %q", e.Error, tt.msg)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	ts := startSim(t, withConfig(func(c *config) { c.Presets = []string{"nomic-embed-text", "tinyllama", "llama3.2:1b"} }))
	tests := []struct {
		path string
		body any
		msg  string
	}{
		{"/api/chat", userChat("nomic-embed-text", "hi"), `"nomic-embed-text" does not support chat`},
		{"/api/chat", map[string]any{"model": "nomic-embed-text"}, `"nomic-embed-text" does not support chat`},
		{"/api/generate", map[string]any{"model": "nomic-embed-text", "prompt": "hi"}, `"nomic-embed-text" does not support generate`},
		{"/api/chat", with(userChat("tinyllama", "hi"), "tools", []any{map[string]any{"type": "function"}}), "registry.ollama.ai/library/tinyllama:latest does not support tools"},
	}
	for _, tt := range tests {
		var e apiErrorBody
		ts.call(t, http.MethodPost, tt.path, tt.body, 400, &e)
		if e.Error != tt.msg {
			t.Errorf("%s: %q, want %q", tt.path, e.Error, tt.msg)
		}
	}
	// Tools are fine where the template supports them.
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "hi"), "stream", false, "tools", []any{map[string]any{"type": "function"}}), 200, nil)

	for model, want := range map[string][]string{
		"nomic-embed-text": {"embedding"},
		"tinyllama":        {"completion"},
		"llama3.2:1b":      {"completion", "tools"},
	} {
		var show apiShowResponse
		ts.call(t, http.MethodPost, "/api/show", map[string]any{"model": model}, 200, &show)
		if !slices.Equal(show.Capabilities, want) {
			t.Errorf("%s capabilities %v, want %v", model, show.Capabilities, want)
		}
	}
}

func TestEmbed(t *testing.T) {
	ts := startSim(t, withConfig(func(c *config) { c.Presets = []string{"nomic-embed-text", "llama3.2:1b"} }))
	var e apiEmbedResponse
	ts.call(t, http.MethodPost, "/api/embed", map[string]any{"model": "nomic-embed-text", "input": []string{"hello world", "x"}}, 200, &e)
	if e.Model != "nomic-embed-text" || len(e.Embeddings) != 2 || len(e.Embeddings[0]) != 768 {
		t.Fatalf("shape: model %q, %d vectors", e.Model, len(e.Embeddings))
	}
	if e.PromptEvalCount != 4+3 {
		t.Errorf("prompt_eval_count %d, want 7", e.PromptEvalCount)
	}
	var norm float64
	for _, x := range e.Embeddings[0] {
		norm += float64(x) * float64(x)
	}
	if math.Abs(norm-1) > 1e-4 {
		t.Errorf("norm² = %v", norm)
	}

	var again apiEmbedResponse
	ts.call(t, http.MethodPost, "/api/embed", map[string]any{"model": "nomic-embed-text", "input": "hello world", "dimensions": 8}, 200, &again)
	if len(again.Embeddings) != 1 || len(again.Embeddings[0]) != 8 {
		t.Fatalf("dimensions: %v", again.Embeddings)
	}
	full := embedding("registry.ollama.ai/library/nomic-embed-text:latest", "hello world", 768)
	if !slices.Equal(e.Embeddings[0], full) {
		t.Errorf("embedding is not deterministic")
	}

	ts.call(t, http.MethodPost, "/api/embed", map[string]any{"model": "llama3.2:1b", "input": "x"}, 200, &e)
	if len(e.Embeddings[0]) != 2048 {
		t.Errorf("llama3.2:1b embeds %d dims", len(e.Embeddings[0]))
	}
	ts.call(t, http.MethodPost, "/api/embed", map[string]any{"model": "llama3.2:1b"}, 200, &e)
	if e.Embeddings == nil || len(e.Embeddings) != 0 {
		t.Errorf("empty input: %v", e.Embeddings)
	}

	var legacy apiEmbeddingResponse
	ts.call(t, http.MethodPost, "/api/embeddings", map[string]any{"model": "nomic-embed-text", "prompt": "hello world"}, 200, &legacy)
	if len(legacy.Embedding) != 768 || float32(legacy.Embedding[0]) != full[0] {
		t.Errorf("legacy embedding %d dims", len(legacy.Embedding))
	}
	ts.call(t, http.MethodPost, "/api/embeddings", map[string]any{"model": "nomic-embed-text"}, 200, &legacy)
	if legacy.Embedding == nil || len(legacy.Embedding) != 0 {
		t.Errorf("empty prompt: %v", legacy.Embedding)
	}
}

func TestTagsShowPs(t *testing.T) {
	ts := startSim(t)
	var tags apiListResponse
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, &tags)
	byName := map[string]apiListModel{}
	for _, m := range tags.Models {
		byName[m.Name] = m
	}
	l, ok := byName["llama3.2:1b"]
	if !ok || len(tags.Models) != 2 {
		t.Fatalf("tags %+v", tags.Models)
	}
	wantDetails := apiModelDetails{Format: "gguf", Family: "llama", Families: []string{"llama"}, ParameterSize: "1.2B", QuantizationLevel: "Q8_0"}
	if l.Model != "llama3.2:1b" || l.Size != 1321098329 || len(l.Digest) != 64 || l.ModifiedAt.IsZero() ||
		l.Details.Family != wantDetails.Family || l.Details.ParameterSize != wantDetails.ParameterSize ||
		l.Details.QuantizationLevel != wantDetails.QuantizationLevel || l.Details.Format != "gguf" {
		t.Errorf("llama3.2:1b %+v", l)
	}

	var show apiShowResponse
	ts.call(t, http.MethodPost, "/api/show", map[string]any{"model": "llama3.2:1b"}, 200, &show)
	if show.Details.Family != "llama" || !strings.Contains(show.Template, "<|start_header_id|>") ||
		!strings.Contains(show.Parameters, `stop                           "<|eot_id|>"`) ||
		!strings.HasPrefix(show.Modelfile, "# Modelfile generated by \"ollama show\"") || show.License == "" {
		t.Errorf("show %+v", show)
	}
	for key, want := range map[string]float64{
		"general.parameter_count":      1235814432,
		"llama.context_length":         131072,
		"llama.embedding_length":       2048,
		"general.file_type":            7,
		"general.quantization_version": 2,
	} {
		if got, _ := show.ModelInfo[key].(float64); got != want {
			t.Errorf("model_info[%s] = %v, want %v", key, show.ModelInfo[key], want)
		}
	}
	if show.ModelInfo["general.architecture"] != "llama" {
		t.Errorf("architecture %v", show.ModelInfo["general.architecture"])
	}

	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2", "hi"), "stream", false), 404, nil)
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("LLAMA3.2:1B", "hi"), "stream", false), 200, nil)
	var ps apiProcessResponse
	ts.call(t, http.MethodGet, "/api/ps", nil, 200, &ps)
	if len(ps.Models) != 1 {
		t.Fatalf("ps %+v", ps)
	}
	p := ps.Models[0]
	if p.Name != "llama3.2:1b" || p.Model != "llama3.2:1b" || p.Size != l.Size || p.SizeVRAM != l.Size ||
		p.Digest != l.Digest || p.ContextLength != 4096 || p.Details.Family != "llama" {
		t.Errorf("ps %+v", p)
	}
}

func TestCopyAndDelete(t *testing.T) {
	ts := startSim(t)
	ts.call(t, http.MethodPost, "/api/copy", map[string]any{"source": "llama3.2:1b", "destination": "team/mine"}, 200, nil)
	var tags apiListResponse
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, &tags)
	digests := map[string]string{}
	for _, m := range tags.Models {
		digests[m.Name] = m.Digest
	}
	if digests["team/mine:latest"] == "" || digests["team/mine:latest"] != digests["llama3.2:1b"] {
		t.Fatalf("after copy: %v", digests)
	}
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("team/mine", "hi"), "stream", false), 200, nil)

	blobs := func() int {
		entries, err := os.ReadDir(filepath.Join(ts.s.cfg.ModelsDir, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	before := blobs()
	ts.call(t, http.MethodDelete, "/api/delete", map[string]any{"model": "team/mine"}, 200, nil)
	if blobs() != before {
		t.Errorf("deleting a copy removed shared blobs")
	}
	if _, err := os.Stat(filepath.Join(ts.s.cfg.ModelsDir, "manifests", "registry.ollama.ai", "team")); !os.IsNotExist(err) {
		t.Errorf("empty manifest directories remain: %v", err)
	}
	ts.call(t, http.MethodDelete, "/api/delete", map[string]any{"name": "llama3.2:1b"}, 200, nil)
	if blobs() >= before {
		t.Errorf("deleting the last user kept its blobs")
	}
	var e apiErrorBody
	ts.call(t, http.MethodDelete, "/api/delete", map[string]any{"model": "llama3.2:1b"}, 404, &e)
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, &tags)
	if len(tags.Models) != 1 || tags.Models[0].Name != "qwen2.5:0.5b" {
		t.Errorf("left %+v", tags.Models)
	}
}

func TestStatsAndReset(t *testing.T) {
	ts := startSim(t)
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "a b"), "stream", false, "options", map[string]any{"num_predict": 5}), 200, nil)
	ts.call(t, http.MethodPost, "/v1/chat/completions", with(userChat("qwen2.5:0.5b", "a"), "max_tokens", 2), 200, nil)
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, nil)
	st := ts.stats(t)
	if st.Requests["/api/chat"] != 1 || st.Requests["/v1/chat/completions"] != 1 || st.Requests["/api/tags"] != 1 {
		t.Errorf("requests %v", st.Requests)
	}
	if st.Models["llama3.2:1b"] != 1 || st.Models["qwen2.5:0.5b"] != 1 {
		t.Errorf("models %v", st.Models)
	}
	if st.TokensGenerated != 7 || st.PromptTokens != 6+5 || st.Loads != 2 || st.InFlight != 0 || st.Instance != "test" {
		t.Errorf("stats %+v", st)
	}
	if !slices.Equal(st.Loaded, []string{"llama3.2:1b", "qwen2.5:0.5b"}) && !slices.Equal(st.Loaded, []string{"qwen2.5:0.5b", "llama3.2:1b"}) {
		t.Errorf("loaded %v", st.Loaded)
	}
	ts.call(t, http.MethodPost, "/_sim/reset", nil, 200, nil)
	st = ts.stats(t)
	if len(st.Requests) != 0 || st.TokensGenerated != 0 || st.Loads != 0 {
		t.Errorf("after reset %+v", st)
	}
}
