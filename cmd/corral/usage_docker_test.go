package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"corral/ui"
)

// simTokens is what the simulators report having done, summed.
func simTokens(t *testing.T, f *fleet) (prompt, completion int) {
	for _, in := range f.st.Instances {
		prompt += simCounter(t, in.Endpoint, "prompt_tokens")
		completion += simCounter(t, in.Endpoint, "tokens_generated")
	}
	return prompt, completion
}

// usageBy reads corral's usage report, waiting for the last settle.
func (f *fleet) usageBy(t *testing.T, by string, wantRequests int64) ui.UsageReport {
	t.Helper()
	var rep ui.UsageReport
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := newDaemon(f.dataDir).getJSON(context.Background(), "/api/v1/usage?by="+by, &rep); err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, r := range rep.Rows {
			n += r.Requests
		}
		if n >= wantRequests {
			return rep
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("usage never reached %d requests: %+v", wantRequests, rep)
	return rep
}

// TestUsageMatchesUpstreamCounts: what corral records equals what the
// instances counted, through both official clients, stream and not, and a
// client that did not ask for usage never sees the usage chunk.
func TestUsageMatchesUpstreamCounts(t *testing.T) {
	f := startFleet(t, 2)
	t.Parallel()
	for _, in := range f.st.Instances {
		sim(t, in.Endpoint, "POST", "/_sim/reset", "", nil)
	}
	ctx := context.Background()
	const model = "llama3.2:1b"
	oc := openai.NewClient(option.WithBaseURL(f.gateway+"/v1/"), option.WithAPIKey(f.key), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{
		Model:     model,
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("one two three four")},
		MaxTokens: openai.Int(7),
	}
	if _, err := oc.Chat.Completions.New(ctx, params); err != nil {
		t.Fatal(err)
	}
	// Stream without include_usage: no chunk with usage reaches the client.
	stream := oc.Chat.Completions.NewStreaming(ctx, params)
	for stream.Next() {
		if c := stream.Current(); c.Usage.TotalTokens != 0 || len(c.Choices) == 0 {
			t.Fatalf("client that did not ask got a usage chunk: %+v", c)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	// Stream with include_usage: the client gets it, as from Ollama.
	withUsage := params
	withUsage.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream = oc.Chat.Completions.NewStreaming(ctx, withUsage)
	var sawUsage openai.CompletionUsage
	for stream.Next() {
		if c := stream.Current(); c.Usage.TotalTokens != 0 {
			sawUsage = c.Usage
		}
	}
	if err := stream.Err(); err != nil || sawUsage.CompletionTokens != 7 {
		t.Fatalf("include_usage stream: usage %+v, err %v", sawUsage, err)
	}

	base, _ := url.Parse(f.gateway)
	olc := ollama.NewClient(base, &http.Client{Transport: authTransport{f.key}})
	stop := false
	for _, streamIt := range []*bool{nil, &stop} {
		err := olc.Chat(ctx, &ollama.ChatRequest{Model: model, Stream: streamIt,
			Messages: []ollama.Message{{Role: "user", Content: "five six"}}, Options: map[string]any{"num_predict": 9}},
			func(ollama.ChatResponse) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := olc.Generate(ctx, &ollama.GenerateRequest{Model: model, Prompt: "seven", Options: map[string]any{"num_predict": 4}},
		func(ollama.GenerateResponse) error { return nil }); err != nil {
		t.Fatal(err)
	}

	rep := f.usageBy(t, "key", 6)
	wantPrompt, wantCompletion := simTokens(t, f)
	if len(rep.Rows) != 1 || rep.Rows[0].Group != "tester" || rep.Rows[0].Requests != 6 {
		t.Fatalf("usage by key: %+v", rep.Rows)
	}
	got := rep.Rows[0]
	if got.PromptTokens != int64(wantPrompt) || got.CompletionTokens != int64(wantCompletion) || wantCompletion != 7*3+9*2+4 {
		t.Fatalf("corral recorded prompt %d completion %d; the instances counted prompt %d completion %d",
			got.PromptTokens, got.CompletionTokens, wantPrompt, wantCompletion)
	}

	// The CLI shows the same totals.
	out, err := f.cli(t, "usage", "--by", "model")
	if err != nil || !strings.Contains(out, model) || !strings.Contains(out, fmt.Sprint(wantCompletion)) {
		t.Fatalf("corral usage: %v\n%s", err, out)
	}
}

// TestRejectedKeys: no key, a wrong, revoked or expired key, or a model
// the key may not use, each answered in the API's shape, with no usage.
func TestRejectedKeys(t *testing.T) {
	f := startFleet(t, 1)
	t.Parallel()
	limited, err := f.cli(t, "keys", "create", "limited", "--models", "qwen2.5:0.5b")
	if err != nil {
		t.Fatal(err)
	}
	revoked, _ := f.cli(t, "keys", "create", "gone")
	if _, err := f.cli(t, "keys", "revoke", "gone"); err != nil {
		t.Fatal(err)
	}
	expiring, _ := f.cli(t, "keys", "create", "brief", "--expires", "1s")
	time.Sleep(1100 * time.Millisecond)
	cases := []struct {
		name, key string
		code      int
		want      string
	}{
		{"none", "", 401, "missing API key"},
		{"wrong", "crl_nope", 401, "invalid_api_key"},
		{"revoked", strings.TrimSpace(revoked), 401, "revoked"},
		{"expired", strings.TrimSpace(expiring), 401, "expired"},
		{"model not allowed", strings.TrimSpace(limited), 403, "model_not_allowed"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("POST", f.gateway+"/v1/chat/completions", strings.NewReader(`{"model":"llama3.2:1b","messages":[]}`))
		if tc.key != "" {
			req.Header.Set("Authorization", "Bearer "+tc.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(raw)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) || !strings.Contains(body, `"error":{"message"`) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
	var rep ui.UsageReport
	if err := newDaemon(f.dataDir).getJSON(context.Background(), "/api/v1/usage?by=key", &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 0 {
		t.Fatalf("rejected requests were recorded: %+v", rep.Rows)
	}
}

// TestQuotaUnderConcurrency: 50 requests at once against a daily quota of
// about ten requests' worth of tokens; what is granted never exceeds it,
// and the rest get 429 with Retry-After.
func TestQuotaUnderConcurrency(t *testing.T) {
	f := startFleet(t, 2)
	t.Parallel()
	out, err := f.cli(t, "keys", "create", "metered")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)
	const quota = 300 // a request reserves 5 tokens plus ~20 for its prompt
	if _, err := f.cli(t, "keys", "limit", "metered", "--tpd", fmt.Sprint(quota)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			body := fmt.Sprintf(`{"model":"llama3.2:1b","stream":false,"messages":[{"role":"user","content":"q%d"}],"options":{"num_predict":5}}`, i)
			req, _ := http.NewRequest("POST", f.gateway+"/api/chat", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[200] == 0 || codes[429] == 0 || codes[200]+codes[429] != 50 {
		t.Fatalf("status codes %v", codes)
	}
	var rep ui.UsageReport
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := newDaemon(f.dataDir).getJSON(context.Background(), "/api/v1/usage?by=key&key=metered", &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Rows) == 1 && rep.Rows[0].Requests == int64(codes[200]) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rep.Rows) != 1 {
		t.Fatalf("usage rows %+v", rep.Rows)
	}
	used := rep.Rows[0].PromptTokens + rep.Rows[0].CompletionTokens
	if used > quota || rep.Rows[0].Requests != int64(codes[200]) {
		t.Fatalf("granted %d requests using %d tokens against a quota of %d (codes %v)", rep.Rows[0].Requests, used, quota, codes)
	}
	t.Logf("50 concurrent: %d granted (%d tokens of %d), %d refused with 429", codes[200], used, quota, codes[429])
}
