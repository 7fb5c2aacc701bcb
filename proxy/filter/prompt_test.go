package filter

import "testing"

func TestPromptText(t *testing.T) {
	for _, c := range []struct {
		name, route, body, want string
	}{
		{"openai chat strings", "/v1/chat/completions",
			`{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}]}`,
			"Be brief.\nHello"},
		{"openai chat parts", "/v1/chat/completions",
			`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"text","text":"this?"}]}]}`,
			"What is\nthis?"},
		{"openai chat null content", "/v1/chat/completions",
			`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[]},{"role":"user","content":"go"}]}`,
			"go"},
		{"openai completions string", "/v1/completions", `{"model":"m","prompt":"Once upon","suffix":"the end"}`, "Once upon\nthe end"},
		{"openai completions array", "/v1/completions", `{"model":"m","prompt":["one","two"]}`, "one\ntwo"},
		{"openai completions tokens", "/v1/completions", `{"model":"m","prompt":[1,2,3]}`, ""},
		{"openai embeddings", "/v1/embeddings", `{"model":"m","input":["a","b"]}`, "a\nb"},
		{"openai embeddings string", "/v1/embeddings", `{"model":"m","input":"a"}`, "a"},
		{"ollama chat", "/api/chat",
			`{"model":"m","messages":[{"role":"user","content":"Why is the sky blue?","images":["iVBOR"]}],"stream":false}`,
			"Why is the sky blue?"},
		{"ollama generate", "/api/generate", `{"model":"m","prompt":"Tell me","system":"You are a pirate."}`, "You are a pirate.\nTell me"},
		{"ollama embed", "/api/embed", `{"model":"m","input":["x","y"]}`, "x\ny"},
		{"ollama embeddings", "/api/embeddings", `{"model":"m","prompt":"z"}`, "z"},
		{"field names in another case", "/api/generate", `{"model":"m","Prompt":"p"}`, "p"}, // as Ollama decodes them
		{"responses string", "/v1/responses", `{"model":"m","instructions":"Be terse.","input":"Hello"}`, "Be terse.\nHello"},
		{"responses items", "/v1/responses",
			`{"model":"m","input":[{"role":"user","content":"one"},{"type":"message","role":"user","content":[{"type":"input_text","text":"two"},{"type":"input_image","image_url":"data:x"}]},{"type":"function_call_output","call_id":"c","output":"three"}]}`,
			"one\ntwo\nthree"},
		{"messages system string", "/v1/messages",
			`{"model":"m","max_tokens":5,"system":"Be kind.","messages":[{"role":"user","content":"Hi"}]}`, "Be kind.\nHi"},
		{"messages blocks", "/v1/messages",
			`{"model":"m","max_tokens":5,"system":[{"type":"text","text":"sys"}],"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image","source":{"type":"base64","data":"AA"}},{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"b"}]},{"type":"tool_result","tool_use_id":"u","content":"c"}]}]}`,
			"sys\na\nb\nc"},
		{"unknown route", "/api/show", `{"model":"m","prompt":"x"}`, ""},
		{"not json", "/api/chat", `{"messages":`, ""},
		{"wrong shape", "/api/chat", `{"messages":"hi"}`, ""},
		{"empty", "/api/generate", ``, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := PromptText(c.route, []byte(c.body)); got != c.want {
				t.Errorf("PromptText = %q, want %q", got, c.want)
			}
		})
	}
}

func TestPromptMatch(t *testing.T) {
	f := mustNew(t, "sky blue")
	body := `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Why is the SKY BLUE?"}]}]}`
	if p, ok := f.Match(PromptText("/v1/chat/completions", []byte(body))); !ok || p != "sky blue" {
		t.Errorf("Match = %q, %v", p, ok)
	}
	// Parts are joined by a newline: no phrase spans two messages.
	body = `{"model":"m","messages":[{"role":"user","content":"the sky"},{"role":"user","content":"blue"}]}`
	if _, ok := f.Match(PromptText("/api/chat", []byte(body))); ok {
		t.Error("matched across two messages")
	}
}
