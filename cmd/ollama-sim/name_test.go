package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		in    string
		full  string
		short string
		valid bool
	}{
		{"llama3.2", "registry.ollama.ai/library/llama3.2:latest", "llama3.2:latest", true},
		{"llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b", "llama3.2:1b", true},
		{"team/model", "registry.ollama.ai/team/model:latest", "team/model:latest", true},
		{"example.com:5000/ns/m:v1", "example.com:5000/ns/m:v1", "example.com:5000/ns/m:v1", true},
		{"https://example.com/ns/m", "example.com/ns/m:latest", "example.com/ns/m:latest", true},
		{"", "registry.ollama.ai/library/:latest", ":latest", false},
		{"bad name", "registry.ollama.ai/library/bad name:latest", "bad name:latest", false},
		{"a/b/c/d", "", "", false},
		{"ns.x/model", "registry.ollama.ai/ns.x/model:latest", "ns.x/model:latest", false},
		{"model:", "", "", false},
	}
	for _, tt := range tests {
		n := parseName(tt.in)
		if n.valid() != tt.valid {
			t.Errorf("parseName(%q).valid() = %v", tt.in, n.valid())
			continue
		}
		if !tt.valid {
			continue
		}
		if n.String() != tt.full || n.short() != tt.short {
			t.Errorf("parseName(%q) = %s / %s, want %s / %s", tt.in, n, n.short(), tt.full, tt.short)
		}
		if back := nameFromFilepath(n.filepath()); !back.equalFold(n) {
			t.Errorf("filepath round trip of %q gave %v", tt.in, back)
		}
	}
}

func TestGGUFRoundTrip(t *testing.T) {
	data := encodeGGUF([]ggufKV{
		{"general.architecture", "llama"},
		{"general.parameter_count", uint64(1234)},
		{"llama.context_length", uint32(2048)},
		{"rope.scale", float32(0.5)},
		{"add_bos", true},
		{"tokens", []string{"a", "b"}},
	})
	kv, err := decodeGGUF(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if kv["general.architecture"] != "llama" || kv["general.parameter_count"] != uint64(1234) ||
		kv["llama.context_length"] != uint32(2048) || kv["rope.scale"] != float32(0.5) || kv["add_bos"] != true {
		t.Errorf("kv %v", kv)
	}
	if toks, ok := kv["tokens"].([]any); !ok || len(toks) != 2 || toks[1] != "b" {
		t.Errorf("tokens %v", kv["tokens"])
	}

	// A minimal header with no metadata is a valid GGUF file.
	minimal := append([]byte("GGUF"), 3, 0, 0, 0)
	minimal = append(minimal, make([]byte, 16)...)
	if kv, err := decodeGGUF(bytes.NewReader(minimal)); err != nil || len(kv) != 0 {
		t.Errorf("minimal: %v %v", kv, err)
	}
	if _, err := decodeGGUF(bytes.NewReader([]byte("not a model"))); !errors.Is(err, errNotGGUF) {
		t.Errorf("plain text: %v", err)
	}
	if _, err := decodeGGUF(bytes.NewReader(data[:len(data)-3])); err == nil {
		t.Errorf("truncated file decoded")
	}
}

func TestHumanNumber(t *testing.T) {
	for in, want := range map[uint64]string{
		1235814432: "1.2B", 8030261312: "8.0B", 7000000000: "7B", 494032768: "494.03M",
		137000000: "137M", 5000: "5K", 12: "12",
	} {
		if got := humanNumber(in); got != want {
			t.Errorf("humanNumber(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestCatalogueIsConsistent: each entry's manifest adds up to its size and
// its details match what /api/create would derive from the model file.
func TestCatalogueIsConsistent(t *testing.T) {
	for _, e := range catalog() {
		img := e.image()
		if img.manifest.size() != e.size {
			t.Errorf("%s: manifest size %d, want %d", e.name, img.manifest.size(), e.size)
		}
		if humanNumber(e.paramCount) != e.paramSize {
			t.Errorf("%s: %d parameters show as %s, catalogue says %s", e.name, e.paramCount, humanNumber(e.paramCount), e.paramSize)
		}
		for _, l := range append(img.manifest.Layers, img.manifest.Config) {
			if digestOf(img.blobs[l.Digest]) != l.Digest {
				t.Errorf("%s: blob %s does not hash to its digest", e.name, l.Digest)
			}
		}
		if again := e.image(); digestOf(mustJSON(t, again.manifest)) != digestOf(mustJSON(t, img.manifest)) {
			t.Errorf("%s: image is not deterministic", e.name)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
