//go:build ignore

// schema4_gen writes schema4.db: a store as corral wrote it before store
// IDs and namespace ownership (schema version 4, commit 5c2444a). The
// migration tests open it with today's code. It is kept for the record;
// regenerating it needs that release's engine/store package:
//
//	git archive 5c2444a | tar -x -C /tmp/corral-5c2444a
//	cp engine/store/testdata/schema4_gen.go /tmp/corral-5c2444a/engine/store/testdata/
//	cd /tmp/corral-5c2444a/engine/store/testdata && go run schema4_gen.go
//	cp schema4.db back here
package main

import (
	"log"
	"os"
	"time"

	"corral/engine/store"
)

func main() {
	dir, err := os.MkdirTemp("", "schema4-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	must(st.PutSettings(map[string]any{
		"gpus": "all", "cpu_instances": 2, "ollama_image": "ollama/ollama:0.17.4", "keep_alive": "10m", "num_parallel": 4,
		"weights": map[string]int{"corral-ollama-1": 3},
	}))
	must(st.ReplaceInstances([]store.Instance{
		{Name: "corral-ollama-0", Index: 0, GPU: "cpu", GPUIndex: -1, Image: "ollama/ollama:0.17.4", Env: map[string]string{"OLLAMA_HOST": "0.0.0.0:11434"}},
		{Name: "corral-ollama-1", Index: 1, GPU: "cpu", GPUIndex: -1, Image: "ollama/ollama:0.17.4", Env: map[string]string{"OLLAMA_HOST": "0.0.0.0:11434"}},
	}))
	must(st.CreateKey(store.Key{ID: "k1", Name: "alice", Hash: "aa11", Prefix: "abcd", Created: at, AllowedModels: []string{"llama3.2"},
		Limits: store.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}}))
	must(st.CreateKey(store.Key{ID: "k2", Name: "corral-chat-ui", Hash: "bb22", Prefix: "efgh", Created: at, Internal: true}))
	must(st.AddUsage([]store.UsageRecord{
		{Time: at, Key: "k1", Model: "llama3.2", Instance: "corral-ollama-0", PromptTokens: 10, CompletionTokens: 20, Duration: time.Second, Status: 200},
		{Time: at.Add(time.Minute), Key: "k2", User: "bob@example.com", Model: "llama3.2", PromptTokens: 5, CompletionTokens: 7, Duration: time.Second, Status: 200},
	}, []store.UsageDay{
		{Day: "2026-03-01", Key: "k1", Model: "llama3.2", Requests: 1, PromptTokens: 10, CompletionTokens: 20, Duration: time.Second},
		{Day: "2026-03-01", Key: "k2", Model: "llama3.2", User: "bob@example.com", Requests: 1, PromptTokens: 5, CompletionTokens: 7, Duration: time.Second},
	}))
	must(st.CertPut("certificates/acme/chat.example.com/chat.example.com.crt", []byte("-----BEGIN CERTIFICATE-----\nfixture\n-----END CERTIFICATE-----\n")))
	must(st.CertPut("acme/accounts/you@example.com.json", []byte(`{"status":"valid"}`)))
	must(st.Close())
	raw, err := os.ReadFile(dir + "/" + store.FileName)
	if err != nil {
		log.Fatal(err)
	}
	must(os.WriteFile("schema4.db", raw, 0o644))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
