package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestTokenText(t *testing.T) {
	if got := generatedText(3); got != "alpha bravo charlie " {
		t.Errorf("generatedText(3) = %q", got)
	}
	if tokenText(16) != "alpha " || tokenText(15) != "papa " {
		t.Errorf("the word list must cycle every 16 tokens")
	}
}

func TestPromptTokensRule(t *testing.T) {
	tests := []struct {
		contents []string
		context  int
		want     int
	}{
		{[]string{"hello world"}, 0, 6},
		{[]string{""}, 0, 4},
		{[]string{"  spaced\tout \n words "}, 0, 7},
		{[]string{"be brief", "hi"}, 0, 6 + 5},
		{[]string{"x"}, 10, 15},
	}
	for _, tt := range tests {
		if got := promptTokens(tt.contents, tt.context); got != tt.want {
			t.Errorf("promptTokens(%q, %d) = %d, want %d", tt.contents, tt.context, got, tt.want)
		}
	}
}

// counts is what one answer reports.
type counts struct {
	prompt, completion int
	content            string
	reason             string
}

// TestCountsIdenticalAcrossForms checks that /api and /v1, streaming or
// not, report the same prompt and completion counts and text for the same
// input: corral's usage metering relies on it.
func TestCountsIdenticalAcrossForms(t *testing.T) {
	ts := startSim(t)
	messages := []map[string]any{
		{"role": "system", "content": "You are terse."},
		{"role": "user", "content": "What is  the capital\nof France?"},
		{"role": "assistant", "content": "Paris."},
		{"role": "user", "content": "And of Spain?"},
	}
	want := promptTokens([]string{"You are terse.", "What is  the capital\nof France?", "Paris.", "And of Spain?"}, 0)

	for _, limit := range []int{0, 5} {
		var results []counts
		for _, stream := range []bool{true, false} {
			opts := map[string]any{}
			body := map[string]any{"model": "llama3.2:1b", "messages": messages, "stream": stream}
			oai := map[string]any{"model": "llama3.2:1b", "messages": messages, "stream": stream,
				"stream_options": map[string]any{"include_usage": true}}
			if limit > 0 {
				opts["num_predict"] = limit
				oai["max_tokens"] = limit
			}
			body["options"] = opts
			results = append(results, apiChatCounts(t, ts, body, stream), openaiChatCounts(t, ts, oai, stream))
		}
		for i, r := range results {
			if r != results[0] {
				t.Errorf("limit %d: form %d reports %+v, form 0 %+v", limit, i, r, results[0])
			}
		}
		if results[0].prompt != want {
			t.Errorf("prompt tokens %d, want %d", results[0].prompt, want)
		}
	}

	// Generate and completions count a prompt like a one-message chat.
	var g apiGenerateResponse
	ts.call(t, http.MethodPost, "/api/generate", map[string]any{"model": "llama3.2:1b", "prompt": "And of Spain?", "stream": false}, 200, &g)
	var c oaiCompletion
	ts.call(t, http.MethodPost, "/v1/completions", map[string]any{"model": "llama3.2:1b", "prompt": "And of Spain?"}, 200, &c)
	chat := apiChatCounts(t, ts, userChat("llama3.2:1b", "And of Spain?"), true)
	if g.PromptEvalCount != chat.prompt || c.Usage.PromptTokens != chat.prompt || g.EvalCount != c.Usage.CompletionTokens || g.Response != c.Choices[0].Text {
		t.Errorf("generate %d/%d, completions %+v, chat %+v", g.PromptEvalCount, g.EvalCount, c.Usage, chat)
	}
}

func apiChatCounts(t *testing.T, ts *testSim, body map[string]any, stream bool) counts {
	t.Helper()
	resp := ts.do(t, http.MethodPost, "/api/chat", body)
	defer resp.Body.Close()
	var c counts
	for _, line := range ndjsonLines(t, resp.Body) {
		var r apiChatResponse
		strictDecode(t, line, &r)
		c.content += r.Message.Content
		if r.Done {
			c.prompt, c.completion, c.reason = r.PromptEvalCount, r.EvalCount, r.DoneReason
		}
	}
	return c
}

func openaiChatCounts(t *testing.T, ts *testSim, body map[string]any, stream bool) counts {
	t.Helper()
	resp := ts.do(t, http.MethodPost, "/v1/chat/completions", body)
	data := readAll(t, resp)
	var c counts
	if !stream {
		var r oaiChatCompletion
		strictDecode(t, data, &r)
		return counts{r.Usage.PromptTokens, r.Usage.CompletionTokens, r.Choices[0].Message.Content.(string), *r.Choices[0].FinishReason}
	}
	for _, ev := range sseEvents(t, data) {
		if ev == "[DONE]" {
			continue
		}
		var r oaiChatChunk
		strictDecode(t, []byte(ev), &r)
		if len(r.Choices) > 0 {
			c.content += r.Choices[0].Delta.Content.(string)
			if r.Choices[0].FinishReason != nil {
				c.reason = *r.Choices[0].FinishReason
			}
		}
		if r.Usage != nil {
			c.prompt, c.completion = r.Usage.PromptTokens, r.Usage.CompletionTokens
		}
	}
	return c
}

// TestContentArrayCountsPerPart follows Ollama's conversion of an OpenAI
// content array: one message per part.
func TestContentArrayCountsPerPart(t *testing.T) {
	ts := startSim(t)
	var c oaiChatCompletion
	ts.call(t, http.MethodPost, "/v1/chat/completions", map[string]any{
		"model": "llama3.2:1b", "max_tokens": 1,
		"messages": []any{map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "text", "text": "hello world"},
			map[string]any{"type": "text", "text": "again"},
		}}},
	}, 200, &c)
	if c.Usage.PromptTokens != 6+5 {
		t.Errorf("prompt tokens %d, want 11", c.Usage.PromptTokens)
	}
}

func TestStopSequence(t *testing.T) {
	ts := startSim(t)
	var c apiChatResponse
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "x"), "stream", false, "options", map[string]any{"stop": []string{"delta"}, "num_predict": 10}), 200, &c)
	if c.Message.Content != "alpha bravo charlie " || c.DoneReason != "stop" || c.EvalCount != 3 {
		t.Errorf("got %q %s %d", c.Message.Content, c.DoneReason, c.EvalCount)
	}
}

// TestDurationsFollowDelays uses the fake clock: the reported durations
// are the simulated delays.
func TestDurationsFollowDelays(t *testing.T) {
	clk := newFakeClock()
	ts := startSim(t, withClock(clk))
	ts.setConfig(t, `{"load_delay":"2s","first_token_delay":250,"token_interval":"10ms"}`)
	var c apiChatResponse
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "x"), "stream", false, "options", map[string]any{"num_predict": 4}), 200, &c)
	if c.LoadDuration != 2*time.Second || c.PromptEvalDuration != 250*time.Millisecond || c.EvalDuration != 30*time.Millisecond {
		t.Errorf("durations load %v prompt %v eval %v", c.LoadDuration, c.PromptEvalDuration, c.EvalDuration)
	}
	if c.TotalDuration != 2*time.Second+280*time.Millisecond {
		t.Errorf("total %v", c.TotalDuration)
	}
	// Loaded now: the next request does not wait for it.
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "x"), "stream", false), 200, &c)
	if c.LoadDuration >= time.Millisecond {
		t.Errorf("second load_duration %v", c.LoadDuration)
	}
}

// TestClientDisconnectStopsGeneration: a client going away ends the
// generation at once.
func TestClientDisconnectStopsGeneration(t *testing.T) {
	ts := startSim(t)
	ts.setConfig(t, `{"token_interval":"20ms"}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := ts.doCtx(t, ctx, http.MethodPost, "/api/chat", with(userChat("llama3.2:1b", "x"), "options", map[string]any{"num_predict": 1000}))
	dec := json.NewDecoder(resp.Body)
	for range 2 {
		var c apiChatResponse
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := ts.stats(t)
		if st.InFlight == 0 {
			if st.TokensGenerated > 100 {
				t.Errorf("generated %d tokens after the client left", st.TokensGenerated)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation still running: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
