package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestPullProgress(t *testing.T) {
	ts := startSim(t, withClock(newFakeClock()), withConfig(func(c *config) { c.Presets = nil }))
	ts.setConfig(t, `{"pull_duration":"2s"}`)
	resp := ts.do(t, http.MethodPost, "/api/pull", map[string]any{"model": "llama3.2"})
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	var lines []apiProgress
	for _, l := range ndjsonLines(t, resp.Body) {
		var p apiProgress
		strictDecode(t, l, &p)
		lines = append(lines, p)
	}
	if len(lines) < 5 || lines[0].Status != "pulling manifest" {
		t.Fatalf("lines %+v", lines)
	}
	n := len(lines)
	if lines[n-3].Status != "verifying sha256 digest" || lines[n-2].Status != "writing manifest" || lines[n-1].Status != "success" {
		t.Errorf("tail %+v", lines[n-3:])
	}

	entry, _ := lookupCatalog(parseName("llama3.2"))
	img := entry.image()
	var order []string
	last := map[string]apiProgress{}
	for _, p := range lines[1 : n-3] {
		if p.Digest == "" || p.Status != "pulling "+p.Digest[7:19] || p.Total <= 0 {
			t.Fatalf("layer line %+v", p)
		}
		if prev, ok := last[p.Digest]; ok {
			if p.Completed < prev.Completed || p.Total != prev.Total {
				t.Errorf("progress went back: %+v after %+v", p, prev)
			}
		} else {
			order = append(order, p.Digest)
		}
		last[p.Digest] = p
	}
	var want []string
	for _, l := range append(img.manifest.Layers, img.manifest.Config) {
		want = append(want, l.Digest)
	}
	if !slices.Equal(order, want) {
		t.Errorf("layer order %v, want %v", order, want)
	}
	for d, p := range last {
		if p.Completed != p.Total {
			t.Errorf("layer %s ends at %d of %d", d, p.Completed, p.Total)
		}
	}
	if len(lines) < 10 {
		t.Errorf("expected intermediate progress lines, got %d lines", len(lines))
	}

	var tags apiListResponse
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, &tags)
	if len(tags.Models) != 1 || tags.Models[0].Name != "llama3.2:latest" || tags.Models[0].Size != entry.size {
		t.Errorf("tags %+v", tags.Models)
	}

	// Pulling again finds every blob: one line per layer, already complete.
	var final apiProgress
	ts.call(t, http.MethodPost, "/api/pull", map[string]any{"model": "llama3.2:3b", "stream": false}, 200, &final)
	if final.Status != "success" {
		t.Errorf("stream false: %+v", final)
	}
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, &tags)
	if len(tags.Models) != 2 || tags.Models[0].Digest != tags.Models[1].Digest {
		t.Errorf("llama3.2:latest and llama3.2:3b should share a digest: %+v", tags.Models)
	}
}

func TestPullUnknown(t *testing.T) {
	ts := startSim(t)
	resp := ts.do(t, http.MethodPost, "/api/pull", map[string]any{"model": "no-such-model"})
	defer resp.Body.Close()
	lines := ndjsonLines(t, resp.Body)
	if resp.StatusCode != 200 || len(lines) != 2 || string(lines[0]) != `{"status":"pulling manifest"}` ||
		string(lines[1]) != `{"error":"pull model manifest: file does not exist"}` {
		t.Errorf("stream: %d %s", resp.StatusCode, lines)
	}
	var e apiErrorBody
	ts.call(t, http.MethodPost, "/api/pull", map[string]any{"name": "no-such-model", "stream": false}, 500, &e)
	if e.Error != "pull model manifest: file does not exist" {
		t.Errorf("non-stream: %q", e.Error)
	}
	if st := ts.stats(t); st.PullErrors != 2 || st.Pulls != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestPullCancelLeavesNoManifest(t *testing.T) {
	ts := startSim(t)
	ts.setConfig(t, `{"pull_duration":"10s"}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := ts.doCtx(t, ctx, http.MethodPost, "/api/pull", map[string]any{"model": "mistral"})
	dec := json.NewDecoder(resp.Body)
	for range 3 {
		var p apiProgress
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	resp.Body.Close()

	deadline := time.Now().Add(5 * time.Second)
	for ts.stats(t).PullErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatal("pull did not stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(ts.s.cfg.ModelsDir, "manifests", "registry.ollama.ai", "library", "mistral", "latest")); !os.IsNotExist(err) {
		t.Errorf("manifest after cancel: %v", err)
	}
	var tags apiListResponse
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, &tags)
	for _, m := range tags.Models {
		if m.Name == "mistral:latest" {
			t.Errorf("cancelled pull is listed")
		}
	}
}

// TestSharedModelsDir: instances sharing one models directory see each
// other's pulls and deletes, as containers sharing /root/.ollama do.
func TestSharedModelsDir(t *testing.T) {
	dir := t.TempDir()
	a := startSim(t, withDir(dir))
	b := startSim(t, withDir(dir))

	names := func(ts *testSim) []string {
		var tags apiListResponse
		ts.call(t, http.MethodGet, "/api/tags", nil, 200, &tags)
		var out []string
		for _, m := range tags.Models {
			out = append(out, m.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(b); !slices.Equal(got, []string{"llama3.2:1b", "qwen2.5:0.5b"}) {
		t.Fatalf("b before: %v", got)
	}
	var e apiErrorBody
	b.call(t, http.MethodPost, "/api/chat", with(userChat("mistral", "hi"), "stream", false), 404, &e)

	a.call(t, http.MethodPost, "/api/pull", map[string]any{"model": "mistral", "stream": false}, 200, nil)
	if got := names(b); !slices.Equal(got, []string{"llama3.2:1b", "mistral:latest", "qwen2.5:0.5b"}) {
		t.Fatalf("b after a's pull: %v", got)
	}
	b.call(t, http.MethodPost, "/api/chat", with(userChat("mistral", "hi"), "stream", false), 200, nil)

	b.call(t, http.MethodDelete, "/api/delete", map[string]any{"model": "mistral"}, 200, nil)
	if got := names(a); slices.Contains(got, "mistral:latest") {
		t.Errorf("a after b's delete: %v", got)
	}
	if a.stats(t).Pulls != 1 || b.stats(t).Pulls != 0 {
		t.Errorf("pull counted on the wrong instance")
	}
}
