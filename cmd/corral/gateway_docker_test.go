package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"corral/cmd/ollama-sim/simimage"
	"corral/engine"
	"corral/engine/enginetest"
)

// fleet is corral serving n simulator instances, with a gateway key.
type fleet struct {
	*daemonProc
	gateway string // http://host:port
	key     string
	st      engine.Status
	client  *http.Client // nil: http.DefaultClient
}

func startFleet(t testing.TB, n int, extra ...string) *fleet {
	t.Helper()
	image := simimage.Image(t)
	ns := enginetest.Namespace(t)
	dataDir := t.TempDir()
	args := append([]string{"--namespace", ns, "--cpu-instances", fmt.Sprint(n), "--ollama-image", image}, extra...)
	p := startServe(t, dataDir, args...)
	f := &fleet{daemonProc: p}
	f.st = p.waitStatus(t, fmt.Sprintf("%d healthy instances", n), 60*time.Second, allHealthy(n))
	f.gateway = "http://" + p.logAttr(t, "gateway listening", "addr")
	var out, errOut bytes.Buffer
	if err := newApp(&out, &errOut).run(context.Background(), []string{"keys", "create", "tester", "--data-dir", dataDir}); err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut.String())
	}
	f.key = strings.TrimSpace(out.String())
	if !strings.HasPrefix(f.key, "crl_") {
		t.Fatalf("keys create printed %q", out.String())
	}
	// The gateway routes only to instances whose models it has polled.
	f.waitRoutable(t, "llama3.2:1b")
	return f
}

// logAttr waits for a log record with msg and returns one attribute.
func (p *daemonProc) logAttr(t testing.TB, msg, attr string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, r := range p.log {
			if r["msg"] == msg {
				p.mu.Unlock()
				return fmt.Sprint(r[attr])
			}
		}
		p.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %q log line", msg)
	return ""
}

func (f *fleet) waitRoutable(t testing.TB, model string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := f.do("GET", "/v1/models/"+model, "")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("model %s never became routable", model)
}

func (f *fleet) do(method, path, body string) (*http.Response, error) {
	req, err := http.NewRequest(method, f.gateway+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+f.key)
	c := f.client
	if c == nil {
		c = http.DefaultClient
	}
	return c.Do(req)
}

// sim talks to one simulator instance directly, as tests may.
func sim(t testing.TB, endpoint, method, path, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, endpoint+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, endpoint+path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, endpoint+path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("decode %s: %v: %s", path, err, raw)
		}
	}
}

// served counts the chat requests one instance answered.
func served(t testing.TB, endpoint string) int {
	var st struct {
		Requests map[string]int `json:"requests"`
	}
	sim(t, endpoint, "GET", "/_sim/stats", "", &st)
	return st.Requests["/api/chat"] + st.Requests["/v1/chat/completions"]
}

type authTransport struct{ key string }

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+a.key)
	return http.DefaultTransport.RoundTrip(r)
}

// TestGatewayWithOfficialClients drives corral's gateway with the clients
// users run: openai-go, Ollama's own Go client, and curl.
func TestGatewayWithOfficialClients(t *testing.T) {
	f := startFleet(t, 2)
	t.Parallel()
	ctx := context.Background()
	const model = "llama3.2:1b"

	oc := openai.NewClient(option.WithBaseURL(f.gateway+"/v1/"), option.WithAPIKey(f.key), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{
		Model:     model,
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello world")},
		MaxTokens: openai.Int(5),
	}
	comp, err := oc.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("openai non-stream: %v", err)
	}
	if got := comp.Choices[0].Message.Content; got != "alpha bravo charlie delta echo " {
		t.Fatalf("openai content = %q", got)
	}
	if comp.Usage.PromptTokens != 6 || comp.Usage.CompletionTokens != 5 {
		t.Fatalf("openai usage = %+v", comp.Usage)
	}

	stream := oc.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("openai stream: %v", err)
	}
	if got := acc.Choices[0].Message.Content; got != "alpha bravo charlie delta echo " || chunks < 5 {
		t.Fatalf("openai stream content = %q in %d chunks", got, chunks)
	}

	wrong := openai.NewClient(option.WithBaseURL(f.gateway+"/v1/"), option.WithAPIKey("crl_wrong"), option.WithMaxRetries(0))
	_, err = wrong.Chat.Completions.New(ctx, params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("wrong key: %v", err)
	}

	base, _ := url.Parse(f.gateway)
	olc := ollama.NewClient(base, &http.Client{Transport: authTransport{f.key}})
	var content strings.Builder
	var final ollama.ChatResponse
	err = olc.Chat(ctx, &ollama.ChatRequest{
		Model:    model,
		Messages: []ollama.Message{{Role: "user", Content: "hello world"}},
		Options:  map[string]any{"num_predict": 4},
	}, func(r ollama.ChatResponse) error {
		content.WriteString(r.Message.Content)
		if r.Done {
			final = r
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ollama chat: %v", err)
	}
	if content.String() != "alpha bravo charlie delta " || !final.Done || final.PromptEvalCount != 6 || final.EvalCount != 4 {
		t.Fatalf("ollama chat = %q, final %+v", content.String(), final.Metrics)
	}
	var gen strings.Builder
	err = olc.Generate(ctx, &ollama.GenerateRequest{Model: model, Prompt: "hello world", Options: map[string]any{"num_predict": 3}},
		func(r ollama.GenerateResponse) error { gen.WriteString(r.Response); return nil })
	if err != nil || gen.String() != "alpha bravo charlie " {
		t.Fatalf("ollama generate = %q, %v", gen.String(), err)
	}
	list, err := olc.List(ctx)
	if err != nil {
		t.Fatalf("ollama list: %v", err)
	}
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "llama3.2:1b,qwen2.5:0.5b" && strings.Join(names, ",") != "qwen2.5:0.5b,llama3.2:1b" {
		t.Fatalf("ollama list = %v (want each model once across 2 instances)", names)
	}
	if err := olc.Chat(ctx, &ollama.ChatRequest{Model: "nope"}, func(ollama.ChatResponse) error { return nil }); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown model via ollama client: %v", err)
	}

	// curl -N prints SSE as it arrives.
	out, err := exec.Command("curl", "-sN", "-H", "Authorization: Bearer "+f.key, "-H", "Content-Type: application/json",
		"-d", `{"model":"llama3.2:1b","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`,
		f.gateway+"/v1/chat/completions").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "data: {") || !strings.HasSuffix(string(out), "data: [DONE]\n\n") || strings.Count(string(out), "data: ") < 5 {
		t.Fatalf("curl -N output:\n%s", out)
	}
	out, _ = exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-d", "{}", f.gateway+"/api/chat").Output()
	if string(out) != "401" {
		t.Fatalf("curl without key: %s", out)
	}

	// An operator's weight reaches the status, and a bad one is refused.
	var wout bytes.Buffer
	name := f.st.Instances[1].Name
	if err := newApp(&wout, &wout).run(ctx, []string{"weight", "--data-dir", f.dataDir, name, "3"}); err != nil {
		t.Fatalf("corral weight: %v", err)
	}
	st, err := f.status(ctx)
	if err != nil || st.Instances[1].Weight != 3 || st.Instances[0].Weight != 1 {
		t.Fatalf("weights after corral weight: %+v, %v", st.Instances, err)
	}
	if err := newApp(&wout, &wout).run(ctx, []string{"weight", name, "0", "--data-dir", f.dataDir}); err == nil || !strings.Contains(err.Error(), "use 1 to 100") {
		t.Fatalf("weight 0: %v", err)
	}
}

// TestGatewayBalancesByLoadedModel: the model loaded on one instance gets
// the requests; while it is busy they wait in corral's queue for it rather
// than load the model on the idle instance, until the wait ahead would
// exceed a load (10 s until one is seen): then they spread.
func TestGatewayBalancesByLoadedModel(t *testing.T) {
	f := startFleet(t, 2)
	t.Parallel()
	a, b := f.st.Instances[0].Endpoint, f.st.Instances[1].Endpoint
	const model = "qwen2.5:0.5b"
	// Load the model on b only; a request takes about a second.
	sim(t, b, "POST", "/api/generate", `{"model":"`+model+`"}`, nil)
	for _, ep := range []string{a, b} {
		sim(t, ep, "POST", "/_sim/config", `{"token_interval":"25ms"}`, nil)
		sim(t, ep, "POST", "/_sim/reset", "", nil)
	}
	waitLoaded(t, f, "corral-", model, 1)
	chat := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				resp, err := f.do("POST", "/api/chat", `{"model":"`+model+`","stream":false,"messages":[{"role":"user","content":"hi"}],"options":{"num_predict":40}}`)
				if err != nil {
					t.Error(err)
					return
				}
				if body := readAllBody(t, resp); resp.StatusCode != 200 {
					t.Errorf("%d %s", resp.StatusCode, body)
				}
			})
		}
		wg.Wait()
	}

	for range 2 {
		chat(1)
	}
	if na, nb := served(t, a), served(t, b); na != 0 || nb != 2 {
		t.Fatalf("sequential requests: a=%d b=%d, want both on b where the model is loaded", na, nb)
	}
	// Four at once: b (OLLAMA_NUM_PARALLEL 1 by default) takes one, and
	// waiting for it (3 s for the last) beats a load on a.
	chat(4)
	if na, nb := served(t, a), served(t, b); na != 0 || nb != 6 {
		t.Fatalf("4 concurrent requests: a=%d b=%d, want all on b, the rest waiting in corral", na, nb)
	}
	var loads struct {
		Loads int `json:"loads"`
	}
	sim(t, a, "GET", "/_sim/stats", "", &loads)
	if loads.Loads != 0 {
		t.Fatalf("a loaded the model %d times while b could serve soon", loads.Loads)
	}
	// Sixteen at once: those past the tenth in line would wait longer
	// than a load, so the model spreads to a.
	chat(16)
	if na := served(t, a); na == 0 {
		t.Fatalf("16 concurrent requests never spread to a (b=%d)", served(t, b))
	}
}

func waitLoaded(t testing.TB, f *fleet, _ string, model string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := f.do("GET", "/api/ps", "")
		if err == nil {
			var ps struct {
				Models []struct {
					Name string `json:"name"`
				} `json:"models"`
			}
			json.NewDecoder(resp.Body).Decode(&ps)
			resp.Body.Close()
			count := 0
			for _, m := range ps.Models {
				if m.Name == model {
					count++
				}
			}
			if count >= n {
				time.Sleep(time.Second) // one more engine poll, so routing sees it
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never loaded", model)
}

func readAllBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

// TestGatewayFailover: under steady load on 3 instances one is killed.
// No request that had not started streaming fails; streams it cut end with
// an error event; the instance is back in rotation once healed.
func TestGatewayFailover(t *testing.T) {
	f := startFleet(t, 3)
	t.Parallel()
	for _, in := range f.st.Instances {
		sim(t, in.Endpoint, "POST", "/_sim/config", `{"token_interval":"10ms"}`, nil)
	}
	victim := f.st.Instances[1]

	var okN, cutN, failedBeforeStream atomic.Int32
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 9 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"model":"llama3.2:1b","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"w%d r%d"}]}`, w, i)
				resp, err := f.do("POST", "/v1/chat/completions", body)
				if err != nil {
					failedBeforeStream.Add(1)
					failures.Store(fmt.Sprintf("w%d r%d", w, i), err.Error())
					continue
				}
				if resp.StatusCode != 200 {
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					failedBeforeStream.Add(1)
					failures.Store(fmt.Sprintf("w%d r%d", w, i), fmt.Sprintf("%d %s", resp.StatusCode, raw))
					continue
				}
				sc := bufio.NewScanner(resp.Body)
				var last string
				data := 0
				for sc.Scan() {
					if l := sc.Text(); strings.HasPrefix(l, "data: ") {
						last = l
						data++
					}
				}
				resp.Body.Close()
				switch {
				case last == "data: [DONE]":
					okN.Add(1)
				case strings.HasPrefix(last, `data: {"error"`) && data > 1:
					cutN.Add(1) // cut mid-stream, and said so
				case strings.HasPrefix(last, `data: {"error"`):
					failedBeforeStream.Add(1)
					failures.Store(fmt.Sprintf("w%d r%d", w, i), last)
				default:
					failures.Store(fmt.Sprintf("w%d r%d", w, i), "silently truncated: last line "+last)
					failedBeforeStream.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second)
	enginetest.Docker(t, "kill", victim.ContainerID)
	// Keep the load on while the engine notices and heals it.
	f.waitStatus(t, "victim healthy again", 60*time.Second, func(st engine.Status) bool {
		return allHealthy(3)(st) && st.Instances[1].ContainerID == victim.ContainerID
	})
	sim(t, victim.Endpoint, "POST", "/_sim/reset", "", nil)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	failures.Range(func(k, v any) bool { t.Errorf("%v: %v", k, v); return true })
	if failedBeforeStream.Load() != 0 {
		t.Fatalf("%d requests failed (ok %d, cut mid-stream %d)", failedBeforeStream.Load(), okN.Load(), cutN.Load())
	}
	if okN.Load() < 50 {
		t.Fatalf("only %d requests completed", okN.Load())
	}
	if n := served(t, victim.Endpoint); n == 0 {
		t.Fatalf("healed instance got no requests back")
	}
	t.Logf("ok %d, cut mid-stream with an error event %d", okN.Load(), cutN.Load())
}
