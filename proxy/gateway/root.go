package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// about is the answer to GET /: what this server is and how to use it,
// for a person who opens the address or a client that probes it. It
// needs no key and names nothing internal.
type about struct {
	Name      string              `json:"name"`
	Version   string              `json:"version,omitempty"`
	About     string              `json:"about"`
	Auth      string              `json:"auth"`
	Endpoints map[string][]string `json:"endpoints"`
	Docs      map[string]string   `json:"docs"`
}

var aboutEndpoints = map[string][]string{
	"openai": {"POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings", "POST /v1/responses",
		"GET /v1/models", "GET /v1/models/{model}"},
	"anthropic": {"POST /v1/messages"},
	"ollama": {"POST /api/chat", "POST /api/generate", "POST /api/embed", "POST /api/embeddings", "POST /api/show",
		"GET /api/tags", "GET /api/ps", "GET /api/version"},
}

var aboutDocs = map[string]string{
	"openai":    "https://platform.openai.com/docs/api-reference",
	"anthropic": "https://docs.anthropic.com/en/api/messages",
	"ollama":    "https://github.com/ollama/ollama/blob/main/docs/api.md",
	"corral":    "README.md in corral's source, section \"The gateway\"",
}

// serveRoot answers GET and HEAD /: JSON for programs, a few lines of
// text for a browser.
func (g *Gateway) serveRoot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		apiError{Status: http.StatusMethodNotAllowed, Message: "/ answers GET"}.write(w, dialectOpenAI)
		return
	}
	a := about{
		Name:      "corral",
		Version:   g.cfg.Version,
		About:     "an LLM gateway over Ollama: the OpenAI, Anthropic and Ollama APIs, balanced across GPUs, with API keys",
		Auth:      "send your key as Authorization: Bearer KEY (or x-api-key: KEY); the admin makes keys with corral keys create NAME",
		Endpoints: aboutEndpoints,
		Docs:      aboutDocs,
	}
	h := w.Header()
	h.Add("Vary", "Accept")
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "application/json; charset=utf-8")
		if r.Method == http.MethodGet {
			b, _ := json.MarshalIndent(a, "", "  ")
			w.Write(append(b, '\n'))
		}
		return
	}
	// Plain text, not HTML: nothing in it is markup a page could abuse.
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method != http.MethodGet {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s.\n\n", strings.TrimSpace("corral "+a.Version), a.About)
	fmt.Fprintf(&b, "To use it, %s.\n\n", a.Auth)
	for _, api := range []string{"openai", "anthropic", "ollama"} {
		fmt.Fprintf(&b, "%s API (%s):\n", map[string]string{"openai": "OpenAI", "anthropic": "Anthropic", "ollama": "Ollama"}[api], aboutDocs[api])
		for _, e := range aboutEndpoints[api] {
			fmt.Fprintf(&b, "  %s\n", e)
		}
		b.WriteString("\n")
	}
	b.WriteString("For example, with an OpenAI client: base URL THIS-ADDRESS/v1, your key as the API key.\n")
	fmt.Fprintf(&b, "More: %s.\n", aboutDocs["corral"])
	w.Write([]byte(b.String()))
}
