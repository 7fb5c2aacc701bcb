package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"corral/ui"
)

// The clients people already use, through corral's gateway: the OpenAI
// Responses API with openai-go, Anthropic's Messages API with a plain
// request (its SDKs send the same), streamed and not, metered exactly as
// the instance counted. Shared by the simulator and the real-Ollama
// tests.
type clientCounts struct{ requests, prompt, completion int64 }

func (c *clientCounts) add(prompt, completion int64) {
	c.requests++
	c.prompt += prompt
	c.completion += completion
}

// responsesBoth asks /v1/responses once whole and once streamed with
// openai-go, and returns the text of each and the counts they reported.
func responsesBoth(t *testing.T, f *fleet, model string, maxTokens int64, c *clientCounts) (whole, streamed string) {
	t.Helper()
	ctx := context.Background()
	oc := openai.NewClient(option.WithBaseURL(f.gateway+"/v1/"), option.WithAPIKey(f.key), option.WithMaxRetries(0))
	params := responses.ResponseNewParams{
		Model:           model,
		Instructions:    openai.String("Answer briefly."),
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("hello world")},
		MaxOutputTokens: openai.Int(maxTokens),
	}
	r, err := oc.Responses.New(ctx, params)
	if err != nil {
		t.Fatalf("responses: %v", err)
	}
	if r.Status != "completed" || r.OutputText() == "" || r.Usage.OutputTokens == 0 || r.Usage.InputTokens == 0 {
		t.Fatalf("responses: status %q text %q usage %+v", r.Status, r.OutputText(), r.Usage)
	}
	c.add(r.Usage.InputTokens, r.Usage.OutputTokens)

	stream := oc.Responses.NewStreaming(ctx, params)
	var text strings.Builder
	var done *responses.Response
	deltas := 0
	for stream.Next() {
		switch ev := stream.Current(); ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
			deltas++
		case "response.completed":
			d := ev.AsResponseCompleted().Response
			done = &d
		}
	}
	if err := stream.Err(); err != nil || done == nil || deltas == 0 {
		t.Fatalf("responses stream: %d deltas, completed %v, %v", deltas, done != nil, err)
	}
	if done.OutputText() != text.String() {
		t.Fatalf("streamed text %q, completed says %q", text.String(), done.OutputText())
	}
	c.add(done.Usage.InputTokens, done.Usage.OutputTokens)
	return r.OutputText(), text.String()
}

// messagesBoth posts an Anthropic Messages request with x-api-key, whole
// and streamed, and returns the text of each.
func messagesBoth(t *testing.T, f *fleet, model string, maxTokens int, c *clientCounts) (whole, streamed string) {
	t.Helper()
	body := func(stream bool) string {
		b, _ := json.Marshal(map[string]any{
			"model": model, "max_tokens": maxTokens, "stream": stream,
			"system":   "Answer briefly.",
			"messages": []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hello world"}}}},
		})
		return string(b)
	}
	post := func(stream bool) *http.Response {
		req, _ := http.NewRequest("POST", f.gateway+"/v1/messages", strings.NewReader(body(stream)))
		req.Header.Set("x-api-key", f.key)
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("content-type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("messages: %d %s", resp.StatusCode, readAllBody(t, resp))
		}
		return resp
	}
	var m struct {
		Type    string `json:"type"`
		Content []struct {
			Type, Text string
		} `json:"content"`
		StopReason string `json:"stop_reason"`
		Usage      struct {
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
	}
	resp := post(false)
	if err := json.Unmarshal([]byte(readAllBody(t, resp)), &m); err != nil || m.Type != "message" || len(m.Content) == 0 || m.Usage.OutputTokens == 0 {
		t.Fatalf("messages: %+v %v", m, err)
	}
	c.add(m.Usage.InputTokens, m.Usage.OutputTokens)

	resp = post(true)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("messages stream Content-Type %q", ct)
	}
	var text strings.Builder
	var names []string
	var input, output int64
	sc := bufio.NewScanner(resp.Body)
	var name string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			name = v
			names = append(names, v)
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Message struct {
				Usage struct {
					InputTokens int64 `json:"input_tokens"`
				} `json:"usage"`
			} `json:"message"`
			Delta struct {
				Text string `json:"text"`
			} `json:"delta"`
			Usage *struct {
				InputTokens  *int64 `json:"input_tokens"`
				OutputTokens int64  `json:"output_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %s: %v: %s", name, err, data)
		}
		switch name {
		case "message_start":
			input = ev.Message.Usage.InputTokens
		case "content_block_delta":
			text.WriteString(ev.Delta.Text)
		case "message_delta":
			if ev.Usage.InputTokens != nil {
				input = *ev.Usage.InputTokens
			}
			output = ev.Usage.OutputTokens
		}
	}
	if len(names) < 4 || names[0] != "message_start" || names[len(names)-1] != "message_stop" || output == 0 {
		t.Fatalf("messages stream events %v, output tokens %d", names, output)
	}
	c.add(input, output)
	return m.Content[0].Text, text.String()
}

// waitUsage waits for the usage of key to show want, and fails with what
// it shows otherwise.
func waitUsage(t *testing.T, dataDir, key string, want clientCounts) {
	t.Helper()
	var rep ui.UsageReport
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := newDaemon(dataDir).getJSON(context.Background(), "/api/v1/usage?by=key&key="+key, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Rows) == 1 && rep.Rows[0].Requests >= want.requests || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Requests != want.requests || rep.Rows[0].PromptTokens != want.prompt || rep.Rows[0].CompletionTokens != want.completion {
		t.Fatalf("usage %+v; the instance counted %d requests, prompt %d, completion %d", rep.Rows, want.requests, want.prompt, want.completion)
	}
}

// gatewayModels lists a key's models by /api/tags and /v1/models.
func gatewayModels(t *testing.T, f *fleet, key string) (tags, ids []string) {
	t.Helper()
	get := func(path string, out any) {
		req, _ := http.NewRequest("GET", f.gateway+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(readAllBody(t, resp)), out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
	}
	var tl struct {
		Models []struct{ Name string } `json:"models"`
	}
	get("/api/tags", &tl)
	for _, m := range tl.Models {
		tags = append(tags, m.Name)
	}
	var ml struct {
		Data []struct{ ID string } `json:"data"`
	}
	get("/v1/models", &ml)
	for _, m := range ml.Data {
		ids = append(ids, m.ID)
	}
	slices.Sort(tags)
	slices.Sort(ids)
	return tags, ids
}

// behindTheBack makes a model on one instance directly, as someone with
// access to Ollama could, and checks that corral lists and serves it in
// the same instant, or neither: a list that shows it means a request for
// it is served; one that does not is followed by a request that has the
// instances read again and is served, and then the lists show it.
func behindTheBack(t *testing.T, f *fleet, endpoint, source, name, chatBody string) {
	t.Helper()
	sim(t, endpoint, "POST", "/api/copy", `{"source":"`+source+`","destination":"`+name+`"}`, nil)
	tags, _ := gatewayModels(t, f, f.key)
	listed := slices.Contains(tags, name+":latest")
	start := time.Now()
	resp, err := f.do("POST", "/api/chat", chatBody)
	if err != nil {
		t.Fatal(err)
	}
	body := readAllBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("a model made behind corral's back (listed before: %v) is refused: %d %s", listed, resp.StatusCode, body)
	}
	tags, ids := gatewayModels(t, f, f.key)
	if !slices.Contains(tags, name+":latest") || !slices.Contains(ids, name+":latest") {
		t.Fatalf("served, but not listed: tags %v, models %v", tags, ids)
	}
	t.Logf("model made behind corral's back: listed at once %v, served after %s", listed, time.Since(start).Round(time.Millisecond))
}

// TestGatewayClientAPIs runs the clients' APIs over simulators: the
// Responses and Messages APIs metered exactly, one view of the models
// for the lists and routing, per-key lists, CORS set by flag and changed
// live by the admin API, and GET /.
func TestGatewayClientAPIs(t *testing.T) {
	// A long health interval: a model made behind corral's back is then
	// served because a request has the instances read again, not because
	// a poll happened by.
	f := startFleet(t, 2, "--health-interval", "10s", "--cors-origins", "https://app.example.com")
	t.Parallel()

	var want clientCounts
	whole, streamed := responsesBoth(t, f, "llama3.2:1b", 3, &want)
	// The simulator's words: deterministic, the same for both.
	if whole != "alpha bravo charlie " || streamed != whole {
		t.Fatalf("responses text %q, streamed %q", whole, streamed)
	}
	whole, streamed = messagesBoth(t, f, "qwen2.5:0.5b", 4, &want)
	if whole != "alpha bravo charlie delta " || streamed != whole {
		t.Fatalf("messages text %q, streamed %q", whole, streamed)
	}
	waitUsage(t, f.dataDir, "tester", want)

	behindTheBack(t, f, f.st.Instances[1].Endpoint, "llama3.2:1b", "behind",
		`{"model":"behind","stream":false,"messages":[{"role":"user","content":"hi"}],"options":{"num_predict":2}}`)

	// Lists by key.
	if _, err := f.cli(t, "keys", "create", "only-qwen", "--models", "qwen2.5:0.5b"); err != nil {
		t.Fatal(err)
	}
	out, err := f.cli(t, "keys", "create", "only-llama", "--models", "llama3.2:1b")
	if err != nil {
		t.Fatal(err)
	}
	llamaKey := strings.TrimSpace(out)
	tags, ids := gatewayModels(t, f, llamaKey)
	if !slices.Equal(tags, []string{"llama3.2:1b"}) || !slices.Equal(ids, tags) {
		t.Fatalf("key for llama3.2:1b lists tags %v, models %v", tags, ids)
	}
	if tags, _ := gatewayModels(t, f, f.key); !slices.Equal(tags, []string{"behind:latest", "llama3.2:1b", "qwen2.5:0.5b"}) {
		t.Fatalf("key for every model lists %v", tags)
	}

	// CORS: the origin from the flag, then one set live by the admin API.
	preflight := func(origin string) (int, string) {
		req, _ := http.NewRequest("OPTIONS", f.gateway+"/v1/chat/completions", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin")
	}
	if code, acao := preflight("https://app.example.com"); code != 204 || acao != "https://app.example.com" {
		t.Fatalf("allowed origin's preflight: %d %q", code, acao)
	}
	if code, acao := preflight("https://other.example.com"); code != 403 || acao != "" {
		t.Fatalf("other origin's preflight: %d %q", code, acao)
	}
	var set ui.CORSSettings
	if err := newDaemon(f.dataDir).do(context.Background(), "PUT", "/api/v1/settings/cors", ui.CORSSettings{Origins: []string{"https://other.example.com"}}, &set); err != nil {
		t.Fatal(err)
	}
	if !set.Enabled || !slices.Equal(set.Origins, []string{"https://other.example.com"}) {
		t.Fatalf("PUT answered %+v", set)
	}
	if code, _ := preflight("https://app.example.com"); code != 403 {
		t.Fatalf("origin removed live still passes: %d", code)
	}
	if code, acao := preflight("https://other.example.com"); code != 204 || acao != "https://other.example.com" {
		t.Fatalf("origin added live: %d %q", code, acao)
	}
	// The same from the CLI: corral cors set, then clear.
	if out, err := f.cli(t, "cors", "set", "https://third.example.com"); err != nil || !strings.Contains(out, "on, 1 origins") {
		t.Fatalf("cors set: %v %s", err, out)
	}
	if code, acao := preflight("https://third.example.com"); code != 204 || acao != "https://third.example.com" {
		t.Fatalf("origin set by the CLI: %d %q", code, acao)
	}
	if out, err := f.cli(t, "cors", "set", "ftp://nope"); err == nil || !strings.Contains(err.Error(), "ftp://nope") {
		t.Fatalf("a bad origin from the CLI: %v %s", err, out)
	}
	if out, err := f.cli(t, "cors", "clear"); err != nil || !strings.Contains(out, "off (no origins)") {
		t.Fatalf("cors clear: %v %s", err, out)
	}
	if code, _ := preflight("https://third.example.com"); code != 403 {
		t.Fatalf("after cors clear: %d", code)
	}

	// GET / without a key says what this is and names no address.
	resp, err := http.Get(f.gateway + "/")
	if err != nil {
		t.Fatal(err)
	}
	body := readAllBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `"name": "corral"`) || !strings.Contains(body, "/v1/messages") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, body)
	}
	for _, in := range f.st.Instances {
		if host := strings.TrimPrefix(in.Endpoint, "http://"); strings.Contains(body, host) {
			t.Fatalf("GET / names an instance: %s", body)
		}
	}
}
