package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"corral/engine"
	"corral/engine/enginetest"
	"corral/ui"
)

// The end-to-end suite on the real Ollama server, built from source by
// scripts/ollama-image (no registry, no download), with a tiny model made
// by cmd/mkgguf and imported through corral.

// realOllama returns the image to test, or skips: CI builds it and sets
// CORRAL_E2E_OLLAMA=required, which turns a missing image into a failure.
func realOllama(t testing.TB) string {
	t.Helper()
	image := os.Getenv("CORRAL_OLLAMA_E2E_IMAGE")
	if image == "" {
		image = "corral-ollama:0.17.4"
	}
	if err := exec.Command("docker", "image", "inspect", image).Run(); err != nil {
		msg := fmt.Sprintf("real Ollama image %s not found: build it with scripts/ollama-image", image)
		if os.Getenv("CORRAL_E2E_OLLAMA") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return image
}

func TestRealOllamaEndToEnd(t *testing.T) {
	image := realOllama(t)
	ns := enginetest.Namespace(t)
	dataDir := t.TempDir()
	p := startServe(t, dataDir, "--namespace", ns, "--cpu-instances", "2", "--ollama-image", image)
	st := p.waitStatus(t, "2 healthy Ollama instances", 120*time.Second, allHealthy(2))
	f := &fleet{daemonProc: p, st: st, gateway: "http://" + p.logAttr(t, "gateway listening", "addr")}
	key, err := f.cli(t, "keys", "create", "e2e")
	if err != nil {
		t.Fatal(err)
	}
	f.key = strings.TrimSpace(key)

	// A model made here, imported twice under two names, with no registry.
	// One thread: Ollama's default spins two threads against each other on
	// a busy 2-core machine.
	gguf := filepath.Join(t.TempDir(), "tiny.gguf")
	if out, err := exec.Command("go", "run", "../mkgguf", "-o", gguf).CombinedOutput(); err != nil {
		t.Fatalf("mkgguf: %v\n%s", err, out)
	}
	for _, name := range []string{"tiny", "tiny2"} {
		out, err := f.cli(t, "models", "import", gguf, "--name", name, "--template", "{{ .Prompt }}",
			"--param", "num_ctx=2048", "--param", "num_predict=16", "--param", "num_thread=1")
		if err != nil {
			t.Fatalf("import %s: %v\n%s", name, err, out)
		}
	}
	f.waitRoutable(t, "tiny:latest")
	f.waitRoutable(t, "tiny2:latest")
	ctx := context.Background()

	// openai-go, stream and not.
	oc := openai.NewClient(option.WithBaseURL(f.gateway+"/v1/"), option.WithAPIKey(f.key), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{
		Model:     "tiny",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
		MaxTokens: openai.Int(12),
	}
	comp, err := oc.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("openai: %v", err)
	}
	if comp.Usage.CompletionTokens != 12 || comp.Choices[0].Message.Content == "" {
		t.Fatalf("openai answer %q usage %+v", comp.Choices[0].Message.Content, comp.Usage)
	}
	stream := oc.Chat.Completions.NewStreaming(ctx, params)
	chunks := 0
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			chunks++
		}
	}
	if err := stream.Err(); err != nil || chunks == 0 {
		t.Fatalf("openai stream: %d chunks, %v", chunks, err)
	}

	// Ollama's own client: chat and generate; corral's recorded usage must
	// equal the counts Ollama reported.
	base, _ := url.Parse(f.gateway)
	olc := ollama.NewClient(base, &http.Client{Transport: authTransport{f.key}})
	var wantPrompt, wantCompletion int64
	wantPrompt += comp.Usage.PromptTokens
	wantCompletion += comp.Usage.CompletionTokens
	var final ollama.ChatResponse
	if err := olc.Chat(ctx, &ollama.ChatRequest{Model: "tiny", Messages: []ollama.Message{{Role: "user", Content: "hi there"}},
		Options: map[string]any{"num_predict": 10}}, func(r ollama.ChatResponse) error {
		if r.Done {
			final = r
		}
		return nil
	}); err != nil {
		t.Fatalf("ollama chat: %v", err)
	}
	if final.EvalCount != 10 {
		t.Fatalf("ollama chat eval_count %d", final.EvalCount)
	}
	wantPrompt += int64(final.PromptEvalCount)
	wantCompletion += int64(final.EvalCount)
	var gen ollama.GenerateResponse
	if err := olc.Generate(ctx, &ollama.GenerateRequest{Model: "tiny2", Prompt: "abc", Options: map[string]any{"num_predict": 5}},
		func(r ollama.GenerateResponse) error {
			if r.Done {
				gen = r
			}
			return nil
		}); err != nil {
		t.Fatalf("ollama generate: %v", err)
	}
	wantPrompt += int64(gen.PromptEvalCount)
	wantCompletion += int64(gen.EvalCount)
	// The stream above had no include_usage: corral asked for it and
	// counted it; its counts equal a second, identical non-stream call.
	wantPrompt += comp.Usage.PromptTokens
	wantCompletion += comp.Usage.CompletionTokens
	var rep ui.UsageReport
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := newDaemon(dataDir).getJSON(ctx, "/api/v1/usage?by=key", &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Rows) == 1 && rep.Rows[0].Requests == 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].PromptTokens != wantPrompt || rep.Rows[0].CompletionTokens != wantCompletion {
		t.Fatalf("usage %+v; Ollama counted prompt %d completion %d", rep.Rows, wantPrompt, wantCompletion)
	}

	// Two models, placed one per instance: /api/ps of each instance shows
	// its own, and requests for each land there.
	if _, err := f.cli(t, "place", "tiny", "--gpus", "0"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cli(t, "place", "tiny2", "--gpus", "1"); err != nil {
		t.Fatal(err)
	}
	onlyLoaded := func(ep, model, other string) bool {
		return simLoaded(t, ep, model+":latest") && !simLoaded(t, ep, other+":latest")
	}
	deadline = time.Now().Add(60 * time.Second)
	for !(onlyLoaded(st.Instances[0].Endpoint, "tiny", "tiny2") && onlyLoaded(st.Instances[1].Endpoint, "tiny2", "tiny")) {
		if time.Now().After(deadline) {
			t.Fatal("placement never showed in the instances' /api/ps")
		}
		time.Sleep(250 * time.Millisecond)
	}
	p.mu.Lock()
	since := len(p.log) // requests before the placement went anywhere
	p.mu.Unlock()
	for range 4 {
		for _, m := range []string{"tiny", "tiny2"} {
			r, err := f.do("POST", "/api/generate", `{"model":"`+m+`","prompt":"x","stream":false,"options":{"num_predict":3}}`)
			if err != nil {
				t.Fatal(err)
			}
			readAllBody(t, r)
		}
	}
	// The request log line follows the answer; wait for all eight.
	var routed int
	for deadline := time.Now().Add(10 * time.Second); ; {
		p.mu.Lock()
		routed = 0
		for _, rec := range p.log[since:] {
			if rec["msg"] == "request" && rec["path"] == "/api/generate" {
				routed++
			}
		}
		p.mu.Unlock()
		if routed >= 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.mu.Lock()
	for _, rec := range p.log[since:] {
		if rec["msg"] != "request" || rec["path"] != "/api/generate" {
			continue
		}
		want := map[string]string{"tiny:latest": st.Instances[0].Name, "tiny2:latest": st.Instances[1].Name}[fmt.Sprint(rec["model"])]
		if rec["instance"] != want {
			t.Errorf("request for %v served by %v, want %s", rec["model"], rec["instance"], want)
		}
	}
	p.mu.Unlock()
	if routed != 8 {
		t.Fatalf("found %d of the 8 placed requests in the log", routed)
	}

	// A pull fails cleanly with Ollama's real error: there is no registry.
	if _, err := f.cli(t, "pull", "llama3.2:1b"); err == nil || !strings.Contains(err.Error(), "pull model manifest") {
		t.Fatalf("pull without a registry: %v", err)
	}

	// An instance killed under load: no request fails before its first byte.
	if _, err := f.cli(t, "place", "tiny2", "--clear"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cli(t, "place", "tiny", "--replicas", "2"); err != nil {
		t.Fatal(err)
	}
	var ok, cut, failed atomic.Int32
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := f.do("POST", "/api/chat", `{"model":"tiny","messages":[{"role":"user","content":"go"}],"options":{"num_predict":40}}`)
				if err != nil || r.StatusCode != 200 {
					failed.Add(1)
					if err == nil {
						b, _ := io.ReadAll(r.Body)
						r.Body.Close()
						err = errors.New(r.Status + " " + string(b))
					}
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				sc := bufio.NewScanner(r.Body)
				var last string
				lines := 0
				for sc.Scan() {
					last, lines = sc.Text(), lines+1
				}
				r.Body.Close()
				switch {
				case strings.Contains(last, `"done":true`):
					ok.Add(1)
				case strings.HasPrefix(last, `{"error"`) && lines > 1:
					cut.Add(1)
				default:
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, "ended with "+last)
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	enginetest.Docker(t, "kill", st.Instances[0].ContainerID)
	p.waitStatus(t, "killed instance healed", 120*time.Second, func(s engine.Status) bool {
		return allHealthy(2)(s) && s.Instances[0].ContainerID == st.Instances[0].ContainerID
	})
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed before their first byte (first: %v); ok %d, cut mid-stream %d", failed.Load(), firstFailure.Load(), ok.Load(), cut.Load())
	}
	t.Logf("real Ollama under a kill: %d ok, %d cut mid-stream with an error line, 0 failed", ok.Load(), cut.Load())
}

// TestRealOllamaClientAPIs: the OpenAI Responses API (openai-go) and
// Anthropic's Messages API (a plain request), streamed and not, through
// corral to the real Ollama server, with usage recorded exactly as Ollama
// counted it; and a model Ollama made behind corral's back is listed and
// served together.
func TestRealOllamaClientAPIs(t *testing.T) {
	image := realOllama(t)
	ns := enginetest.Namespace(t)
	dataDir := t.TempDir()
	// A long health interval: the model made behind corral's back is served
	// because the request has the instance read again, not by a poll.
	p := startServe(t, dataDir, "--namespace", ns, "--cpu-instances", "1", "--ollama-image", image, "--health-interval", "10s")
	st := p.waitStatus(t, "a healthy Ollama instance", 120*time.Second, allHealthy(1))
	f := &fleet{daemonProc: p, st: st, gateway: "http://" + p.logAttr(t, "gateway listening", "addr")}
	key, err := f.cli(t, "keys", "create", "clients")
	if err != nil {
		t.Fatal(err)
	}
	f.key = strings.TrimSpace(key)
	gguf := filepath.Join(t.TempDir(), "tiny.gguf")
	if out, err := exec.Command("go", "run", "../mkgguf", "-o", gguf).CombinedOutput(); err != nil {
		t.Fatalf("mkgguf: %v\n%s", err, out)
	}
	if out, err := f.cli(t, "models", "import", gguf, "--name", "tiny", "--template", "{{ .Prompt }}",
		"--param", "num_ctx=2048", "--param", "num_predict=16", "--param", "num_thread=1"); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	f.waitRoutable(t, "tiny:latest")

	var want clientCounts
	responsesBoth(t, f, "tiny", 6, &want)
	messagesBoth(t, f, "tiny", 5, &want)
	waitUsage(t, dataDir, "clients", want)
	t.Logf("Responses and Messages through corral: %d requests, %d prompt and %d completion tokens, as Ollama counted", want.requests, want.prompt, want.completion)

	behindTheBack(t, f, st.Instances[0].Endpoint, "tiny", "behind",
		`{"model":"behind","stream":false,"messages":[{"role":"user","content":"hi"}],"options":{"num_predict":2}}`)
}
