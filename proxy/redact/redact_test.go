package redact

import "testing"

func TestAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`Get "http://172.18.0.3:11434/api/version": connection refused`, `Get "…": connection refused`},
		{"dial tcp 172.18.0.3:11434: connect: connection refused", "dial tcp …: connect: connection refused"},
		{"dial tcp [fd00::3]:11434: i/o timeout", "dial tcp …: i/o timeout"},
		{"lookup corral-chatui:8080 failed", "lookup … failed"},
		{"10.0.0.7 is down", "… is down"},
		{"exit code 137 (killed)", "exit code 137 (killed)"},
		{"pulling ghcr.io/open-webui/open-webui:main: 40% of 1.2 GiB", "pulling ghcr.io/open-webui/open-webui:main: 40% of 1.2 GiB"},
		{"waiting for GET /api/version", "waiting for GET /api/version"},
		{"dial tcp corral-ollama-0:11434: no route", "dial tcp …: no route"},
		{"model qwen3:8b, gemma3:27b and llama3.2:1b", "model qwen3:8b, gemma3:27b and llama3.2:1b"},
		{"crash loop: 3 deaths in 10m0s; next start at 12:30:45", "crash loop: 3 deaths in 10m0s; next start at 12:30:45"},
		{"container is paused: docker unpause corral-ollama-0", "container is paused: docker unpause corral-ollama-0"},
	} {
		if got := Addresses(tc.in); got != tc.want {
			t.Errorf("Addresses(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
