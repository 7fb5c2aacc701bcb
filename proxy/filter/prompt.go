package filter

import (
	"encoding/json"
	"strings"
)

// promptBody is what PromptText reads of a request body, for every route.
type promptBody struct {
	Messages []struct {
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Prompt json.RawMessage `json:"prompt"`
	System json.RawMessage `json:"system"`
	Suffix json.RawMessage `json:"suffix"`
	Input  json.RawMessage `json:"input"`
	// The Responses API's system text.
	Instructions json.RawMessage `json:"instructions"`
}

// PromptText returns the text a request asks the model about, the lines
// of its parts joined by newlines (so that no phrase matches across two
// messages):
//
//   - /v1/chat/completions, /api/chat: every message's content, a string
//     or (OpenAI) an array of parts whose "text" parts count;
//   - /v1/completions: prompt, a string or an array of strings, and suffix;
//   - /api/generate: system, prompt and suffix;
//   - /v1/embeddings, /api/embed: input, a string or an array of strings;
//     /api/embeddings: prompt;
//   - /v1/responses: instructions, and input, a string or a list of items
//     whose content is a string or a list of parts (input_text,
//     output_text);
//   - /v1/messages: system, a string or a list of text blocks, and every
//     message's content, a string or a list of blocks (text, and the
//     content of tool_result blocks).
//
// Any other route, a body that is not JSON, or parts of other shapes
// (token arrays, images) give "" for that part.
func PromptText(route string, body []byte) string {
	var b promptBody
	switch route {
	case "/v1/chat/completions", "/api/chat", "/v1/completions", "/api/generate",
		"/v1/embeddings", "/api/embed", "/api/embeddings", "/v1/responses", "/v1/messages":
	default:
		return ""
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	var parts []string
	switch route {
	case "/v1/chat/completions", "/api/chat":
		for _, m := range b.Messages {
			parts = appendContent(parts, m.Content)
		}
	case "/v1/messages":
		parts = appendContent(parts, b.System)
		for _, m := range b.Messages {
			parts = appendContent(parts, m.Content)
		}
	case "/v1/responses":
		parts = appendStrings(parts, b.Instructions)
		var s string
		if json.Unmarshal(b.Input, &s) == nil {
			parts = appendStrings(parts, b.Input)
			break
		}
		var items []struct {
			Content json.RawMessage `json:"content"`
			Output  json.RawMessage `json:"output"`
		}
		if json.Unmarshal(b.Input, &items) == nil {
			for _, it := range items {
				parts = appendContent(parts, it.Content)
				parts = appendStrings(parts, it.Output)
			}
		}
	case "/v1/completions":
		parts = appendStrings(parts, b.Prompt)
		parts = appendStrings(parts, b.Suffix)
	case "/api/embeddings":
		parts = appendStrings(parts, b.Prompt)
	case "/api/generate":
		parts = appendStrings(parts, b.System)
		parts = appendStrings(parts, b.Prompt)
		parts = appendStrings(parts, b.Suffix)
	case "/v1/embeddings", "/api/embed":
		parts = appendStrings(parts, b.Input)
	}
	return strings.Join(parts, "\n")
}

// appendContent appends a message's content: a string, or an array of
// parts of which those of type "text" count.
func appendContent(parts []string, raw json.RawMessage) []string {
	if len(raw) == 0 {
		return parts
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s != "" {
			parts = append(parts, s)
		}
		return parts
	}
	var arr []struct {
		Type    string          `json:"type"`
		Text    string          `json:"text"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &arr) == nil {
		for _, p := range arr {
			switch p.Type {
			case "text", "input_text", "output_text":
				if p.Text != "" {
					parts = append(parts, p.Text)
				}
			case "tool_result":
				// Anthropic's: a string or text blocks, one level down.
				var inner []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				}
				if json.Unmarshal(p.Content, &inner) == nil {
					for _, q := range inner {
						if q.Type == "text" && q.Text != "" {
							parts = append(parts, q.Text)
						}
					}
				} else {
					parts = appendStrings(parts, p.Content)
				}
			}
		}
	}
	return parts
}

// appendStrings appends a value that is a string or an array of strings;
// anything else (token arrays, null) adds nothing.
func appendStrings(parts []string, raw json.RawMessage) []string {
	if len(raw) == 0 {
		return parts
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s != "" {
			parts = append(parts, s)
		}
		return parts
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		for _, e := range arr {
			if json.Unmarshal(e, &s) == nil && s != "" {
				parts = append(parts, s)
			}
		}
	}
	return parts
}
