package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// The model is what Ollama v0.17's llama architecture reads
// (model/models/llama/model.go for its Go engine, llama.cpp's
// llama-model.cpp and llama-vocab.cpp for the other runner): the
// hyperparameters under "llama.", a byte-level BPE ("gpt2") vocabulary,
// and the tensors token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v,
// attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm and
// output, all F32.
//
// The weights are random, but placed so that every runner and sampler
// only ever emits printable ASCII and never the end token: dimension 0 of
// the residual stream is a constant (every token embedding has
// embedBias there, and no layer writes it), so after the final RMS norm it
// is positive; the output row of every other token (control bytes, bytes
// 0x7f and up, bos, eos) is -outputBan in that dimension and zero
// elsewhere, giving it a logit far below any printable token's. Output so
// always runs to num_predict.

const (
	// headDim is the size of an attention head.
	headDim = 16
	// ropeBase is the RoPE frequency base.
	ropeBase = 10000
	// rmsEpsilon is the RMS norm epsilon.
	rmsEpsilon = 1e-5
	// embedBias is dimension 0 of every token embedding.
	embedBias = 8
	// outputBan is the weight that bans a token from the output.
	outputBan = 20
	// outputScale is the spread of printable tokens' output rows.
	outputScale = 0.5
)

// Token ids: the 256 bytes are tokens 0-255, then these two.
const (
	bosID     = 256
	eosID     = 257
	vocabSize = 258
)

// llama.cpp's token types (llama_token_type).
const (
	tokenNormal  int32 = 1
	tokenControl int32 = 3
)

// spec describes the model to write.
type spec struct {
	Layers  int    // transformer blocks
	Dim     int    // embedding length, a multiple of headDim
	Context int    // trained context length
	Seed    uint64 // random weights
}

// defaultSpec is the model the issue measured: 2 layers, 64 dims, 4 heads
// of 16 with 2 KV heads, FFN 128.
var defaultSpec = spec{Layers: 2, Dim: 64, Context: 4096, Seed: 1}

// heads is the number of attention heads.
func (s spec) heads() int { return s.Dim / headDim }

// kvHeads is the number of key/value heads: half the heads (grouped-query
// attention) when that divides evenly.
func (s spec) kvHeads() int {
	if h := s.heads(); h%2 == 0 {
		return h / 2
	}
	return s.heads()
}

// ffn is the feed-forward length.
func (s spec) ffn() int { return 2 * s.Dim }

// validate reports every problem with the spec.
func (s spec) validate() error {
	var errs []error
	if s.Layers < 1 || s.Layers > 64 {
		errs = append(errs, fmt.Errorf("layers %d: want 1 to 64", s.Layers))
	}
	if s.Dim < headDim || s.Dim > 4096 || s.Dim%headDim != 0 {
		errs = append(errs, fmt.Errorf("dim %d: want a multiple of %d from %d to 4096", s.Dim, headDim, headDim))
	}
	if s.Context < 16 || s.Context > 1<<20 {
		errs = append(errs, fmt.Errorf("context %d: want 16 to %d", s.Context, 1<<20))
	}
	return errors.Join(errs...)
}

// printable reports whether the model may emit token id: the bytes of
// printable ASCII, space to tilde.
func printable(id int) bool { return id >= 0x20 && id <= 0x7e }

// byteRunes is GPT-2's byte-to-unicode map (bytes_to_unicode in its
// encoder.py), which byte-level BPE vocabularies use for token text:
// printable Latin-1 bytes stand for themselves, the other 68 bytes map to
// U+0100 onwards in byte order.
func byteRunes() [256]rune {
	var m [256]rune
	next := rune(256)
	for b := range 256 {
		switch {
		case b >= '!' && b <= '~', b >= 0xa1 && b <= 0xac, b >= 0xae:
			m[b] = rune(b)
		default:
			m[b] = next
			next++
		}
	}
	return m
}

// vocabulary returns the token texts and types.
func vocabulary() ([]string, []int32) {
	tokens := make([]string, vocabSize)
	types := make([]int32, vocabSize)
	for b, r := range byteRunes() {
		tokens[b] = string(r)
		types[b] = tokenNormal
	}
	tokens[bosID], types[bosID] = "<s>", tokenControl
	tokens[eosID], types[eosID] = "</s>", tokenControl
	return tokens, types
}

// tinyLlama returns the metadata and tensors of the model s describes.
func tinyLlama(s spec) ([]kv, []tensor, error) {
	if err := s.validate(); err != nil {
		return nil, nil, err
	}
	tokens, types := vocabulary()
	kvs := []kv{
		{"general.architecture", "llama"},
		{"general.name", "corral-tiny"},
		{"general.file_type", uint32(0)}, // all F32
		{"general.alignment", uint32(ggufAlignment)},
		{"llama.block_count", uint32(s.Layers)},
		{"llama.context_length", uint32(s.Context)},
		{"llama.embedding_length", uint32(s.Dim)},
		{"llama.feed_forward_length", uint32(s.ffn())},
		{"llama.attention.head_count", uint32(s.heads())},
		{"llama.attention.head_count_kv", uint32(s.kvHeads())},
		{"llama.attention.key_length", uint32(headDim)},
		{"llama.attention.value_length", uint32(headDim)},
		{"llama.attention.layer_norm_rms_epsilon", float32(rmsEpsilon)},
		{"llama.rope.dimension_count", uint32(headDim)},
		{"llama.rope.freq_base", float32(ropeBase)},
		{"llama.vocab_size", uint32(vocabSize)},
		{"tokenizer.ggml.model", "gpt2"},
		{"tokenizer.ggml.pre", "default"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.token_type", types},
		// llama.cpp requires the key; with no merges every byte stays a token.
		{"tokenizer.ggml.merges", []string{}},
		{"tokenizer.ggml.bos_token_id", uint32(bosID)},
		{"tokenizer.ggml.eos_token_id", uint32(eosID)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
	}

	r := rand.New(rand.NewPCG(s.Seed, 0x636f7272616c)) // "corral"
	dim, kvDim, ffn := uint64(s.Dim), uint64(s.kvHeads()*headDim), uint64(s.ffn())
	// random is a [in, out] weight of normal values scaled by 1/sqrt(in).
	random := func(name string, in, out uint64) tensor {
		t := tensor{name: name, shape: []uint64{in, out}, data: make([]float32, in*out)}
		scale := 1 / math.Sqrt(float64(in))
		for i := range t.data {
			t.data[i] = float32(r.NormFloat64() * scale)
		}
		return t
	}
	// residual is a weight that writes the residual stream: halved, and
	// with output row 0 zero so dimension 0 stays embedBias.
	residual := func(name string, in, out uint64) tensor {
		t := random(name, in, out)
		for i := range t.data {
			t.data[i] /= 2
		}
		clear(t.data[:in])
		return t
	}
	ones := func(name string) tensor {
		t := tensor{name: name, shape: []uint64{dim}, data: make([]float32, dim)}
		for i := range t.data {
			t.data[i] = 1
		}
		return t
	}

	embd := tensor{name: "token_embd.weight", shape: []uint64{dim, vocabSize}, data: make([]float32, dim*vocabSize)}
	for id := range uint64(vocabSize) {
		row := embd.data[id*dim : (id+1)*dim]
		row[0] = embedBias
		for i := 1; i < len(row); i++ {
			row[i] = float32(r.NormFloat64())
		}
	}
	ts := []tensor{embd}
	for l := range s.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			ones(p+"attn_norm.weight"),
			random(p+"attn_q.weight", dim, dim),
			random(p+"attn_k.weight", dim, kvDim),
			random(p+"attn_v.weight", dim, kvDim),
			residual(p+"attn_output.weight", dim, dim),
			ones(p+"ffn_norm.weight"),
			random(p+"ffn_gate.weight", dim, ffn),
			random(p+"ffn_up.weight", dim, ffn),
			residual(p+"ffn_down.weight", ffn, dim),
		)
	}
	out := tensor{name: "output.weight", shape: []uint64{dim, vocabSize}, data: make([]float32, dim*vocabSize)}
	for id := range vocabSize {
		row := out.data[uint64(id)*dim : uint64(id+1)*dim]
		if !printable(id) {
			row[0] = -outputBan
			continue
		}
		for i := 1; i < len(row); i++ {
			row[i] = float32(r.NormFloat64() * outputScale)
		}
	}
	ts = append(ts, ones("output_norm.weight"), out)
	return kvs, ts, nil
}
