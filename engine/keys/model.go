package keys

import "strings"

// normalizeModel spells a model name the way Ollama resolves it, so that
// "llama3.2", "llama3.2:latest", "library/llama3.2" and
// "registry.ollama.ai/library/llama3.2:latest" are one model. Ollama
// compares names without regard to case.
func normalizeModel(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "registry.ollama.ai/")
	n = strings.TrimPrefix(n, "library/")
	if strings.Contains(n, "@") { // pinned by digest
		return n
	}
	if !strings.Contains(n[strings.LastIndex(n, "/")+1:], ":") {
		n += ":latest"
	}
	return n
}
