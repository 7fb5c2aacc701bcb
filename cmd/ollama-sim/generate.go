package main

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// The token engine: one implementation behind /api/chat, /api/generate,
// /v1/chat/completions and /v1/completions. The wire formats (NDJSON, SSE,
// single JSON object) only differ in how they write what it produces.
//
// Generated text: token i (counting from 0) is the i-th word of a fixed
// 16-word list, cycling, followed by one space:
//
//	"alpha bravo charlie delta echo foxtrot golf hotel india juliett
//	 kilo lima mike november oscar papa " and again from "alpha ".
//
// So a 3-token answer is "alpha bravo charlie " on every endpoint.
//
// Token counts: see promptTokens and embedTokens.

// vocabulary is the word list of generated text.
const vocabulary = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa"

// tokenText is the text of token i: a word and a space.
func tokenText(i int) string {
	words := strings.Fields(vocabulary)
	return words[i%len(words)] + " "
}

// generatedText is the whole text of an n-token answer.
func generatedText(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(tokenText(i))
	}
	return b.String()
}

// Per-message template overhead of promptTokens.
const messageOverhead = 4

// promptTokens is the prompt_eval_count of a generation: every message
// costs 4 tokens of template overhead plus one token per
// whitespace-separated word (strings.Fields) of its content. Chat requests
// count their messages as given (an OpenAI content array becomes one
// message per part, as Ollama converts it); generate and completion
// requests count an optional system prompt and the prompt as one message
// each, plus one token per entry of a context returned by an earlier
// /api/generate. Images, tools and the model's own system prompt are not
// counted. /api and /v1, streaming or not, all count the same way, so
// chat [{"role":"user","content":"hello world"}] and generate
// {"prompt":"hello world"} both count 6.
func promptTokens(contents []string, contextLen int) int {
	n := contextLen
	for _, c := range contents {
		n += messageOverhead + len(strings.Fields(c))
	}
	return n
}

// embedTokens is the prompt_eval_count of one embedding input: its words
// plus 2 (the BOS and EOS tokens).
func embedTokens(input string) int {
	return len(strings.Fields(input)) + 2
}

// contextTokens is the "context" of an /api/generate answer: n
// deterministic token ids.
func contextTokens(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = 128000 + i
	}
	return ids
}

// embedding is the deterministic, L2-normalised vector of input for a
// model: the same input always gives the same vector.
func embedding(model, input string, dims int) []float32 {
	h := fnv.New64a()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write([]byte(input))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x6f6c6c616d61))
	v := make([]float32, dims)
	for i := range v {
		v[i] = float32(rng.Float64()*2 - 1)
	}
	return normalize(v)
}

func normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	norm := float32(1 / max(math.Sqrt(sum), 1e-12))
	for i := range v {
		v[i] *= norm
	}
	return v
}

// genSpec is what to generate.
type genSpec struct {
	promptTokens int
	tokens       int      // tokens to generate at most
	limited      bool     // the request set the limit: reaching it is "length"
	stop         []string // a token containing one of these ends with "stop"
}

// genResult is a finished generation.
type genResult struct {
	content            string
	evalCount          int
	doneReason         string // "stop" or "length"
	promptEvalDuration time.Duration
	evalDuration       time.Duration
}

var (
	// errCut ends a generation whose connection the cut_after_tokens fault drops.
	errCut = errors.New("connection cut by cut_after_tokens")
	// errExited ends a generation during which exit_after_tokens fired.
	errExited = errors.New("process exited by exit_after_tokens")
)

// generate produces spec.tokens tokens (fewer on a stop sequence), calling
// emit after each; emit writes and flushes it for streaming clients. It
// waits first_token_delay before the first token and token_interval before
// each further one, stops at once when ctx ends, and applies the
// cut_after_tokens and exit_after_tokens faults.
func (s *server) generate(ctx context.Context, spec genSpec, emit func(token string) error) (genResult, error) {
	knobs := s.sim.get()
	var res genResult
	start := s.clock.Now()
	if err := s.clock.Sleep(ctx, knobs.FirstTokenDelay.std()); err != nil {
		return res, err
	}
	first := s.clock.Now()
	res.promptEvalDuration = max(first.Sub(start), time.Duration(spec.promptTokens)*time.Microsecond)

	var b strings.Builder
	for i := range spec.tokens {
		if i > 0 {
			if err := s.clock.Sleep(ctx, knobs.TokenInterval.std()); err != nil {
				return res, err
			}
		}
		tok := tokenText(i)
		if containsStop(tok, spec.stop) {
			res.doneReason = "stop"
			break
		}
		if err := emit(tok); err != nil {
			return res, err
		}
		b.WriteString(tok)
		res.evalCount++
		s.stats.addTokens(1)
		if s.sim.tokenGenerated() {
			s.exit(1)
			return res, errExited
		}
		if knobs.CutAfterTokens > 0 && res.evalCount >= knobs.CutAfterTokens {
			s.stats.fault("cut")
			return res, errCut
		}
	}
	if res.doneReason == "" {
		res.doneReason = "stop"
		if spec.limited {
			res.doneReason = "length"
		}
	}
	res.content = b.String()
	res.evalDuration = max(s.clock.Now().Sub(first), time.Duration(res.evalCount)*time.Microsecond)
	return res, nil
}

func containsStop(tok string, stops []string) bool {
	word := strings.TrimSpace(tok)
	for _, s := range stops {
		if s != "" && strings.Contains(word, s) {
			return true
		}
	}
	return false
}

// numPredict reads options.num_predict: a positive value is an exact limit.
func numPredict(options map[string]any) (int, bool) {
	switch v := options["num_predict"].(type) {
	case float64:
		if v >= 1 {
			return int(v), true
		}
	case int:
		if v >= 1 {
			return v, true
		}
	}
	return 0, false
}

// stopOption reads options.stop (a string or a list of strings).
func stopOption(options map[string]any) []string {
	switch v := options["stop"].(type) {
	case string:
		return []string{v}
	case []string:
		return v
	case []any:
		var out []string
		for _, s := range v {
			if str, ok := s.(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

// intOption reads a numeric option such as num_ctx.
func intOption(options map[string]any, key string) int {
	switch v := options[key].(type) {
	case float64:
		return int(v)
	case int:
		return v
	}
	return 0
}
