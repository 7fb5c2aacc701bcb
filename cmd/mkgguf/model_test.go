package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func encodeModel(t *testing.T, s spec) []byte {
	t.Helper()
	kvs, ts, err := tinyLlama(s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := writeGGUF(&buf, kvs, ts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTinyLlamaMetadata(t *testing.T) {
	b := encodeModel(t, defaultSpec)
	// The issue measured about 470 KB; the default is 107,072 F32
	// parameters plus about 6 KB of metadata.
	if len(b) < 400_000 || len(b) > 520_000 {
		t.Errorf("model is %d bytes, want 400-520 KB", len(b))
	}
	p, err := parseGGUF(b)
	if err != nil {
		t.Fatal(err)
	}
	// The keys Ollama's llama model and llama.cpp read, with the exact
	// types they accept.
	want := map[string]any{
		"general.architecture":                   "llama",
		"general.alignment":                      uint32(32),
		"llama.block_count":                      uint32(2),
		"llama.context_length":                   uint32(4096),
		"llama.embedding_length":                 uint32(64),
		"llama.feed_forward_length":              uint32(128),
		"llama.attention.head_count":             uint32(4),
		"llama.attention.head_count_kv":          uint32(2),
		"llama.attention.key_length":             uint32(16),
		"llama.attention.value_length":           uint32(16),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(16),
		"llama.rope.freq_base":                   float32(10000),
		"llama.vocab_size":                       uint32(258),
		"tokenizer.ggml.model":                   "gpt2",
		"tokenizer.ggml.pre":                     "default",
		"tokenizer.ggml.merges":                  []string{},
		"tokenizer.ggml.bos_token_id":            uint32(256),
		"tokenizer.ggml.eos_token_id":            uint32(257),
		"tokenizer.ggml.add_bos_token":           true,
		"tokenizer.ggml.add_eos_token":           false,
	}
	for k, v := range want {
		if got := p.kvs[k]; !reflect.DeepEqual(got, v) {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}

	tokens, _ := p.kvs["tokenizer.ggml.tokens"].([]string)
	types, _ := p.kvs["tokenizer.ggml.token_type"].([]int32)
	if len(tokens) != 258 || len(types) != 258 {
		t.Fatalf("%d tokens and %d types, want 258", len(tokens), len(types))
	}
	for id, text := range map[int]string{'a': "a", '!': "!", ' ': "Ġ", '\n': "Ċ", 0: "Ā", 0x7f: "ġ", 0xad: "Ń", 0xff: "ÿ", 256: "<s>", 257: "</s>"} {
		if tokens[id] != text {
			t.Errorf("token %d = %q, want %q", id, tokens[id], text)
		}
	}
	seen := map[string]bool{}
	for id, text := range tokens {
		if seen[text] {
			t.Errorf("token %d %q repeats", id, text)
		}
		seen[text] = true
		wantType := tokenNormal
		if id >= 256 {
			wantType = tokenControl
		}
		if types[id] != wantType {
			t.Errorf("token %d type %d, want %d", id, types[id], wantType)
		}
	}
}

func TestTinyLlamaTensors(t *testing.T) {
	s := spec{Layers: 3, Dim: 48, Context: 256, Seed: 7} // 3 heads: no GQA
	b := encodeModel(t, s)
	p, err := parseGGUF(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.kvs["llama.attention.head_count_kv"]; got != uint32(3) {
		t.Errorf("head_count_kv = %v, want 3", got)
	}
	want := []string{"token_embd.weight [48 258]"}
	for l := range 3 {
		for _, n := range []string{"attn_norm.weight [48]", "attn_q.weight [48 48]", "attn_k.weight [48 48]",
			"attn_v.weight [48 48]", "attn_output.weight [48 48]", "ffn_norm.weight [48]",
			"ffn_gate.weight [48 96]", "ffn_up.weight [48 96]", "ffn_down.weight [96 48]"} {
			want = append(want, fmt.Sprintf("blk.%d.%s", l, n))
		}
	}
	want = append(want, "output_norm.weight [48]", "output.weight [48 258]")
	var got []string
	var end uint64
	for _, ti := range p.tensors {
		got = append(got, fmt.Sprintf("%s %v", ti.name, ti.shape))
		if ti.typ != ggmlF32 || ti.offset%ggufAlignment != 0 || ti.offset < end {
			t.Errorf("tensor %s: type %d at offset %d (previous ends at %d)", ti.name, ti.typ, ti.offset, end)
		}
		n := uint64(4)
		for _, d := range ti.shape {
			n *= d
		}
		end = ti.offset + n
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tensors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if want := p.dataAt + end + padding(end, ggufAlignment); uint64(len(b)) != want {
		t.Errorf("file is %d bytes, want %d", len(b), want)
	}
}

// TestTinyLlamaPrintable checks the weights that keep output printable:
// dimension 0 of the residual stream is embedBias in every embedding and
// no layer writes it, and every unprintable token's output row reads only
// that dimension, negatively.
func TestTinyLlamaPrintable(t *testing.T) {
	_, ts, err := tinyLlama(defaultSpec)
	if err != nil {
		t.Fatal(err)
	}
	dim := defaultSpec.Dim
	for _, tn := range ts {
		switch {
		case tn.name == "token_embd.weight":
			for id := range vocabSize {
				if v := tn.data[id*dim]; v != embedBias {
					t.Errorf("embedding %d dimension 0 = %v, want %v", id, v, embedBias)
				}
			}
		case strings.HasSuffix(tn.name, "attn_output.weight"), strings.HasSuffix(tn.name, "ffn_down.weight"):
			in := int(tn.shape[0])
			for i, v := range tn.data[:in] {
				if v != 0 {
					t.Errorf("%s writes dimension 0 from %d: %v", tn.name, i, v)
					break
				}
			}
		case strings.HasSuffix(tn.name, "norm.weight"):
			for _, v := range tn.data {
				if v != 1 {
					t.Errorf("%s has %v, want all 1", tn.name, v)
					break
				}
			}
		case tn.name == "output.weight":
			printables := 0
			for id := range vocabSize {
				row := tn.data[id*dim : (id+1)*dim]
				if printable(id) {
					printables++
					if row[0] != 0 || allZero(row[1:]) {
						t.Errorf("printable token %d row starts %v", id, row[:3])
					}
					continue
				}
				if row[0] != -outputBan || !allZero(row[1:]) {
					t.Errorf("unprintable token %d row starts %v, want -%d then zeros", id, row[:3], outputBan)
				}
			}
			if printables != 95 {
				t.Errorf("%d printable tokens, want 95", printables)
			}
		}
	}
}

func allZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

func TestTinyLlamaDeterministic(t *testing.T) {
	a := encodeModel(t, defaultSpec)
	if b := encodeModel(t, defaultSpec); !bytes.Equal(a, b) {
		t.Error("the same spec gave different bytes")
	}
	s := defaultSpec
	s.Seed = 2
	if b := encodeModel(t, s); bytes.Equal(a, b) || len(a) != len(b) {
		t.Error("another seed should change the weights and nothing else")
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		spec spec
		want []string // substrings of the error; none = valid
	}{
		{defaultSpec, nil},
		{spec{Layers: 1, Dim: 16, Context: 16}, nil},
		{spec{Layers: 0, Dim: 64, Context: 256}, []string{"layers 0"}},
		{spec{Layers: 2, Dim: 60, Context: 256}, []string{"dim 60"}},
		{spec{Layers: 2, Dim: 0, Context: 256}, []string{"dim 0"}},
		{spec{Layers: 2, Dim: 64, Context: 8}, []string{"context 8"}},
		{spec{Layers: 99, Dim: 8, Context: 0}, []string{"layers 99", "dim 8", "context 0"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.spec), func(t *testing.T) {
			err := tt.spec.validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "tiny.gguf")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-o", out, "-seed", "3", "-layers", "1", "-dim", "32", "-ctx", "512"}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v (stderr %q)", err, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := encodeModel(t, spec{Layers: 1, Dim: 32, Context: 512, Seed: 3})
	if !bytes.Equal(got, want) {
		t.Errorf("file differs from the encoded spec (%d vs %d bytes)", len(got), len(want))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left %d entries in the directory, want only the model", len(entries))
	}

	stdout.Reset()
	if err := run([]string{"-o", "-"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), encodeModel(t, defaultSpec)) {
		t.Error("-o - did not write the default model to stdout")
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "-o is required"},
		{[]string{"-o", out, "extra"}, `unexpected argument "extra"`},
		{[]string{"-o", out, "-dim", "10"}, "dim 10"},
		{[]string{"-o", filepath.Join(dir, "missing", "x.gguf")}, "no such file"},
		{[]string{"-bogus"}, "flag provided but not defined"},
	} {
		if err := run(tt.args, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}
