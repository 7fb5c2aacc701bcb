package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// uploadBlob pushes data as Ollama's client does and returns its digest.
func uploadBlob(t *testing.T, ts *testSim, data []byte) string {
	t.Helper()
	digest := digestOf(data)
	resp := ts.do(t, http.MethodPost, "/api/blobs/"+digest, string(data))
	readAll(t, resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	return digest
}

func progressStatuses(t *testing.T, ts *testSim, path string, body any) []string {
	t.Helper()
	resp := ts.do(t, http.MethodPost, path, body)
	defer resp.Body.Close()
	var out []string
	for _, l := range ndjsonLines(t, resp.Body) {
		if strings.HasPrefix(string(l), `{"error"`) {
			out = append(out, string(l))
			continue
		}
		var p apiProgress
		strictDecode(t, l, &p)
		out = append(out, p.Status)
	}
	return out
}

func TestBlobs(t *testing.T) {
	ts := startSim(t)
	data := encodeGGUF([]ggufKV{{"general.architecture", "llama"}})
	digest := digestOf(data)

	var e apiErrorBody
	resp := ts.do(t, http.MethodHead, "/api/blobs/"+digest, nil)
	readAll(t, resp)
	if resp.StatusCode != 404 {
		t.Errorf("HEAD before upload: %d", resp.StatusCode)
	}
	ts.call(t, http.MethodPost, "/api/blobs/"+digest, string(data), 201, nil)
	ts.call(t, http.MethodPost, "/api/blobs/"+digest, string(data), 200, nil)
	zeros := "sha256:" + strings.Repeat("0", 64)
	ts.call(t, http.MethodPost, "/api/blobs/"+zeros, "something else", 400, &e)
	if want := `digest mismatch, expected "` + zeros + `", got "` + digestOf([]byte("something else")) + `"`; e.Error != want {
		t.Errorf("mismatch: %q, want %q", e.Error, want)
	}
	resp = ts.do(t, http.MethodHead, "/api/blobs/"+digest, nil)
	readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Errorf("HEAD after upload: %d", resp.StatusCode)
	}
	ts.call(t, http.MethodPost, "/api/blobs/sha256:xyz", "x", 400, &e)
	if e.Error != "invalid digest format" {
		t.Errorf("bad digest: %q", e.Error)
	}
}

func TestCreateFromGGUF(t *testing.T) {
	ts := startSim(t)
	data := encodeGGUF([]ggufKV{
		{"general.architecture", "llama"},
		{"general.parameter_count", uint64(3_000_000_000)},
		{"general.file_type", uint32(1)},
		{"llama.context_length", uint32(4096)},
		{"llama.embedding_length", uint32(512)},
	})
	digest := uploadBlob(t, ts, data)

	got := progressStatuses(t, ts, "/api/create", map[string]any{
		"model":    "imported",
		"files":    map[string]string{"model.gguf": digest},
		"template": "{{ .Prompt }}",
		"system":   "You are Mario.",
	})
	want := []string{"parsing GGUF", "using existing layer " + digest}
	if len(got) != 6 || !slices.Equal(got[:2], want) || !strings.HasPrefix(got[2], "creating new layer sha256:") ||
		!strings.HasPrefix(got[3], "creating new layer sha256:") || got[4] != "writing manifest" || got[5] != "success" {
		t.Fatalf("statuses %q", got)
	}

	var tags apiListResponse
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, &tags)
	var imported *apiListModel
	for i, m := range tags.Models {
		if m.Name == "imported:latest" {
			imported = &tags.Models[i]
		}
	}
	if imported == nil {
		t.Fatalf("not listed: %+v", tags.Models)
	}
	if d := imported.Details; d.Family != "llama" || d.ParameterSize != "3B" || d.QuantizationLevel != "F16" || d.Format != "gguf" {
		t.Errorf("details %+v", d)
	}
	if imported.Size <= int64(len(data)) {
		t.Errorf("size %d", imported.Size)
	}

	var show apiShowResponse
	ts.call(t, http.MethodPost, "/api/show", map[string]any{"model": "imported"}, 200, &show)
	if show.System != "You are Mario." || show.Template != "{{ .Prompt }}" || !slices.Equal(show.Capabilities, []string{"completion"}) {
		t.Errorf("show %+v", show)
	}
	var c apiChatResponse
	ts.call(t, http.MethodPost, "/api/chat", with(userChat("imported", "hi"), "stream", false), 200, &c)
	if c.EvalCount != 16 {
		t.Errorf("chat %+v", c)
	}
	var e oaiEmbeddingList
	ts.call(t, http.MethodPost, "/v1/embeddings", map[string]any{"model": "imported", "input": "x"}, 200, &e)
	if v, _ := e.Data[0].Embedding.([]any); len(v) != 512 {
		t.Errorf("embedding length %d", len(v))
	}

	// Again: everything exists now.
	got = progressStatuses(t, ts, "/api/create", map[string]any{"model": "imported", "files": map[string]string{"model.gguf": digest}})
	if !slices.Equal(got, []string{"parsing GGUF", "using existing layer " + digest, "writing manifest", "success"}) {
		t.Errorf("second create %q", got)
	}
	if st := ts.stats(t); st.Creates != 2 {
		t.Errorf("creates %d", st.Creates)
	}
}

func TestCreateFromModel(t *testing.T) {
	ts := startSim(t)
	var final apiProgress
	ts.call(t, http.MethodPost, "/api/create", map[string]any{
		"model": "mario", "from": "llama3.2:1b", "system": "You are Mario.", "parameters": map[string]any{"temperature": 0.5},
		"stream": false,
	}, 200, &final)
	if final.Status != "success" {
		t.Fatalf("final %+v", final)
	}
	var show apiShowResponse
	ts.call(t, http.MethodPost, "/api/show", map[string]any{"model": "mario"}, 200, &show)
	if show.System != "You are Mario." || show.Details.Family != "llama" || show.Details.ParameterSize != "1.2B" ||
		!strings.Contains(show.Parameters, "temperature") || !strings.Contains(show.Parameters, `"<|eot_id|>"`) {
		t.Errorf("show %+v", show)
	}
	var tags apiListResponse
	ts.call(t, http.MethodGet, "/api/tags", nil, 200, &tags)
	sizes := map[string]int64{}
	for _, m := range tags.Models {
		sizes[m.Name] = m.Size
	}
	if sizes["mario:latest"] < sizes["llama3.2:1b"]-1000 {
		t.Errorf("derived model size %d, base %d", sizes["mario:latest"], sizes["llama3.2:1b"])
	}

	// A base model that is not on disk is pulled first, as Ollama does.
	got := progressStatuses(t, ts, "/api/create", map[string]any{"model": "tiny2", "from": "tinyllama"})
	if got[0] != "pulling manifest" || got[len(got)-1] != "success" || !slices.Contains(got, "writing manifest") {
		t.Errorf("statuses %q", got)
	}
}

func TestCreateErrors(t *testing.T) {
	ts := startSim(t)
	text := uploadBlob(t, ts, []byte("not a model"))
	tests := []struct {
		body   map[string]any
		status int
		msg    string
	}{
		{map[string]any{"model": "x"}, 400, "neither 'from' or 'files' was specified"},
		{map[string]any{"model": "x", "files": map[string]string{"m.gguf": text}}, 400, "supplied file was not in GGUF format"},
		{map[string]any{"model": "x", "files": map[string]string{"weights.bin": text}}, 400, "unknown type"},
		{map[string]any{"model": "x", "files": map[string]string{"../m.gguf": text}}, 400, "file path must be relative"},
		{map[string]any{"model": "x", "from": "nope"}, 500, "pull model manifest: file does not exist"},
		{map[string]any{"model": "bad name", "from": "llama3.2:1b"}, 400, "invalid model name"},
	}
	for _, tt := range tests {
		tt.body["stream"] = false
		var e apiErrorBody
		ts.call(t, http.MethodPost, "/api/create", tt.body, tt.status, &e)
		if e.Error != tt.msg {
			t.Errorf("%v: %q, want %q", tt.body, e.Error, tt.msg)
		}
	}
	// Streaming, the error follows the status lines.
	got := progressStatuses(t, ts, "/api/create", map[string]any{"model": "x", "files": map[string]string{"m.gguf": text}})
	if !slices.Equal(got, []string{"parsing GGUF", `{"error":"supplied file was not in GGUF format"}`}) {
		t.Errorf("stream %q", got)
	}
}
