package main

import (
	"testing"

	"corral/engine/models"
	"corral/proxy/gateway"
)

// TestModelNamesAgree: the gateway routes by the same canonical names the
// model manager places and pulls by (the proxy may not import the engine,
// so each has the rule; this keeps them one rule).
func TestModelNamesAgree(t *testing.T) {
	for _, n := range []string{"llama3.2", "llama3.2:1b", "library/qwen2.5", "registry.ollama.ai/library/mistral:7b",
		"hf.co/org/m", "hf.co/org/m:Q4_K_M", "localhost:5000/x", "m@sha256:abc", " spaced ", ""} {
		if a, b := models.Canonical(n), gateway.CanonicalModel(n); a != b {
			t.Errorf("%q: models says %q, gateway says %q", n, a, b)
		}
	}
}
