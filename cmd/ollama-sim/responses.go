package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Ollama's OpenAI Responses API (POST /v1/responses), mirroring
// github.com/ollama/ollama/openai/responses.go and the ResponsesWriter of
// middleware/openai.go (v0.17.4): the request becomes a chat, the answer
// a response object, or a stream of named events ending with
// response.completed, which carries the usage.

// ResponsesRequest is the part of the body the simulator reads.
type ResponsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    string          `json:"instructions,omitempty"`
	MaxOutputTokens *int            `json:"max_output_tokens,omitempty"`
	Temperature     *float64        `json:"temperature"`
	TopP            *float64        `json:"top_p"`
	Tools           []any           `json:"tools,omitempty"`
	Stream          *bool           `json:"stream,omitempty"`
}

// responsesContents converts instructions and input to message contents
// as openai.FromResponsesRequest does: instructions a system message, a
// string input one user message, and each input message its text parts
// joined; function call outputs are tool messages.
func responsesContents(r ResponsesRequest) ([]string, error) {
	var out []string
	if r.Instructions != "" {
		out = append(out, r.Instructions)
	}
	if len(r.Input) == 0 || string(r.Input) == "null" {
		return out, nil
	}
	var s string
	if json.Unmarshal(r.Input, &s) == nil {
		if s != "" {
			out = append(out, s)
		}
		return out, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(r.Input, &items); err != nil {
		return nil, badRequest("input must be a string or array: %v", err)
	}
	for i, raw := range items {
		var item struct {
			Type    string          `json:"type"`
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
			Output  string          `json:"output"`
		}
		if err := json.Unmarshal(raw, &item); err != nil {
			return nil, badRequest("input[%d]: %v", i, err)
		}
		switch item.Type {
		case "", "message":
			text, err := responsesText(item.Content)
			if err != nil {
				return nil, badRequest("input[%d]: %v", i, err)
			}
			out = append(out, text)
		case "function_call_output":
			out = append(out, item.Output)
		case "function_call", "reasoning":
		default:
			return nil, badRequest("input[%d]: unknown input item type: %s", i, item.Type)
		}
	}
	return out, nil
}

// responsesText joins a message's text parts; images add no text.
func responsesText(content json.RawMessage) (string, error) {
	if len(content) == 0 {
		return "", nil
	}
	var s string
	if json.Unmarshal(content, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(content, &parts); err != nil {
		return "", fmt.Errorf("content must be a string or array: %w", err)
	}
	var b strings.Builder
	for i, p := range parts {
		switch p.Type {
		case "input_text", "output_text":
			b.WriteString(p.Text)
		case "input_image":
		default:
			return "", fmt.Errorf("content[%d]: unknown content type: %s", i, p.Type)
		}
	}
	return b.String(), nil
}

func (s *server) handleResponses(w http.ResponseWriter, r *http.Request) error {
	var req ResponsesRequest
	if err := decodeOpenAI(r, &req); err != nil {
		return err
	}
	contents, err := responsesContents(req)
	if err != nil {
		return err
	}
	options := map[string]any{}
	if req.MaxOutputTokens != nil {
		options["num_predict"] = *req.MaxOutputTokens
	}
	stream := req.Stream != nil && *req.Stream
	job := completionJob{
		chat:     true,
		model:    req.Model,
		contents: contents,
		empty:    len(contents) == 0,
		stream:   stream,
		options:  options,
		tools:    len(req.Tools) > 0,
	}
	n := s.nextID()
	out := &responsesWire{s: s, w: w, sse: sse{w: w}, req: req, stream: stream,
		id: fmt.Sprintf("resp_%d", 100000+n), itemID: fmt.Sprintf("msg_%d", 100000+n)}
	return s.runCompletion(w, r, job, out)
}

// responsesWire writes /v1/responses answers.
type responsesWire struct {
	s          *server
	w          http.ResponseWriter
	sse        sse
	req        ResponsesRequest
	stream     bool
	id, itemID string

	seq            int
	created        bool // response.created and .in_progress went out
	contentStarted bool // the message item and its text part were announced
	text           strings.Builder
}

func (c *responsesWire) event(name string, data map[string]any) error {
	data["type"] = name
	data["sequence_number"] = c.seq
	c.seq++
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return c.sse.raw(fmt.Sprintf("event: %s\ndata: %s\n\n", name, b))
}

// response is the response object the events and the whole answer carry.
func (c *responsesWire) response(status string, output []any, usage any) map[string]any {
	var instructions any
	if c.req.Instructions != "" {
		instructions = c.req.Instructions
	}
	tools := c.req.Tools
	if tools == nil {
		tools = []any{}
	}
	topP, temperature := 1.0, 1.0
	if c.req.TopP != nil {
		topP = *c.req.TopP
	}
	if c.req.Temperature != nil {
		temperature = *c.req.Temperature
	}
	return map[string]any{
		"id": c.id, "object": "response", "created_at": c.s.clock.Now().Unix(), "completed_at": nil,
		"status": status, "incomplete_details": nil, "model": c.req.Model, "previous_response_id": nil,
		"instructions": instructions, "output": output, "error": nil, "tools": tools, "tool_choice": "auto",
		"truncation": "disabled", "parallel_tool_calls": true, "text": map[string]any{"format": map[string]any{"type": "text"}},
		"top_p": topP, "presence_penalty": 0, "frequency_penalty": 0, "top_logprobs": 0, "temperature": temperature,
		"reasoning": nil, "usage": usage, "max_output_tokens": c.req.MaxOutputTokens, "max_tool_calls": nil,
		"store": false, "background": false, "service_tier": "default", "metadata": map[string]any{},
		"safety_identifier": nil, "prompt_cache_key": nil,
	}
}

func (c *responsesWire) outputText(text string) map[string]any {
	return map[string]any{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}
}

func (c *responsesWire) message(status string, content []any) map[string]any {
	return map[string]any{"id": c.itemID, "type": "message", "status": status, "role": "assistant", "content": content}
}

func (c *responsesWire) begin() error {
	if c.created {
		return nil
	}
	c.created = true
	if err := c.event("response.created", map[string]any{"response": c.response("in_progress", []any{}, nil)}); err != nil {
		return err
	}
	return c.event("response.in_progress", map[string]any{"response": c.response("in_progress", []any{}, nil)})
}

func (c *responsesWire) token(text string) error {
	if err := c.begin(); err != nil {
		return err
	}
	if !c.contentStarted {
		c.contentStarted = true
		if err := c.event("response.output_item.added", map[string]any{"output_index": 0, "item": c.message("in_progress", []any{})}); err != nil {
			return err
		}
		if err := c.event("response.content_part.added", map[string]any{"item_id": c.itemID, "output_index": 0, "content_index": 0, "part": c.outputText("")}); err != nil {
			return err
		}
	}
	c.text.WriteString(text)
	return c.event("response.output_text.delta", map[string]any{"item_id": c.itemID, "output_index": 0, "content_index": 0, "delta": text, "logprobs": []any{}})
}

func (c *responsesWire) finish(f finished) error {
	m := f.metrics
	usage := map[string]any{
		"input_tokens": m.PromptEvalCount, "output_tokens": m.EvalCount, "total_tokens": m.PromptEvalCount + m.EvalCount,
		"input_tokens_details": map[string]any{"cached_tokens": 0}, "output_tokens_details": map[string]any{"reasoning_tokens": 0},
	}
	if !c.stream {
		resp := c.response("completed", []any{c.message("completed", []any{c.outputText(f.content)})}, usage)
		resp["completed_at"] = c.s.clock.Now().Unix()
		writeOpenAIJSON(c.w, http.StatusOK, resp)
		return nil
	}
	if err := c.begin(); err != nil {
		return err
	}
	var output []any
	if c.contentStarted {
		text := c.text.String()
		done := c.message("completed", []any{c.outputText(text)})
		for _, e := range []struct {
			name string
			data map[string]any
		}{
			{"response.output_text.done", map[string]any{"item_id": c.itemID, "output_index": 0, "content_index": 0, "text": text, "logprobs": []any{}}},
			{"response.content_part.done", map[string]any{"item_id": c.itemID, "output_index": 0, "content_index": 0, "part": c.outputText(text)}},
			{"response.output_item.done", map[string]any{"output_index": 0, "item": done}},
		} {
			if err := c.event(e.name, e.data); err != nil {
				return err
			}
		}
		output = append(output, done)
	}
	resp := c.response("completed", output, usage)
	resp["completed_at"] = c.s.clock.Now().Unix()
	return c.event("response.completed", map[string]any{"response": resp})
}
