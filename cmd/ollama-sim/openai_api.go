package main

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Ollama's OpenAI-compatible API. As in Ollama, each endpoint converts its
// request to the native one and runs the same handler logic; only the
// output differs. Errors the conversion finds have the type of their
// status; errors from the handler behind it are "api_error" with the
// handler's status, exactly as Ollama's middleware writes them.

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...), typed: true}
}

func decodeOpenAI(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return badRequest("%s", err.Error())
	}
	return nil
}

// openaiContents converts the messages as openai.FromChatRequest does: a
// string content is one message, a list of parts is one message per part.
func openaiContents(msgs []OpenAIMessage) ([]string, error) {
	var out []string
	for _, msg := range msgs {
		switch content := msg.Content.(type) {
		case string:
			out = append(out, content)
		case []any:
			for _, c := range content {
				part, ok := c.(map[string]any)
				if !ok {
					return nil, badRequest("invalid message format")
				}
				switch part["type"] {
				case "text":
					text, ok := part["text"].(string)
					if !ok {
						return nil, badRequest("invalid message format")
					}
					out = append(out, text)
				case "image_url":
					url, _ := part["image_url"].(string)
					if m, ok := part["image_url"].(map[string]any); ok {
						url, _ = m["url"].(string)
					}
					if strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://") {
						return nil, badRequest("image URLs are not currently supported, please use base64 encoded data instead")
					}
					out = append(out, "")
				default:
					return nil, badRequest("invalid message format")
				}
			}
		default:
			if msg.ToolCalls == nil {
				return nil, badRequest("invalid message content type: %T", content)
			}
			out = append(out, "")
		}
	}
	return out, nil
}

// openaiStop converts "stop" to options.stop.
func openaiStop(stop any, strict bool) ([]string, error) {
	switch v := stop.(type) {
	case string:
		return []string{v}, nil
	case []any:
		var out []string
		for _, s := range v {
			str, ok := s.(string)
			if !ok {
				if strict {
					return nil, badRequest("invalid type for 'stop' field: %T", s)
				}
				continue
			}
			out = append(out, str)
		}
		return out, nil
	}
	return nil, nil
}

func (s *server) handleChatCompletions(w http.ResponseWriter, r *http.Request) error {
	var req ChatCompletionRequest
	if err := decodeOpenAI(r, &req); err != nil {
		return err
	}
	if len(req.Messages) == 0 {
		return badRequest("[] is too short - 'messages'")
	}
	contents, err := openaiContents(req.Messages)
	if err != nil {
		return err
	}
	options := map[string]any{}
	if stop, _ := openaiStop(req.Stop, false); stop != nil {
		options["stop"] = stop
	}
	if mt := cmp.Or(req.MaxTokens, req.MaxCompletionTokens); mt != nil {
		options["num_predict"] = *mt
	}
	var think *ThinkValue
	if req.ReasoningEffort != nil && *req.ReasoningEffort != "" {
		effort := *req.ReasoningEffort
		if !slices.Contains([]string{"high", "medium", "low", "none"}, effort) {
			return badRequest("invalid reasoning value: '%s' (must be \"high\", \"medium\", \"low\", or \"none\")", effort)
		}
		think = &ThinkValue{Value: effort != "none"}
	}
	job := completionJob{
		chat:     true,
		model:    req.Model,
		contents: contents,
		stream:   req.Stream,
		options:  options,
		tools:    len(req.Tools) > 0,
		think:    think,
	}
	out := &openaiChatWire{
		s: s, w: w, sse: sse{w: w}, model: req.Model, stream: req.Stream,
		id:           fmt.Sprintf("chatcmpl-%d", s.nextID()),
		includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage,
	}
	return s.runCompletion(w, r, job, out)
}

func (s *server) handleCompletions(w http.ResponseWriter, r *http.Request) error {
	var req CompletionRequest
	if err := decodeOpenAI(r, &req); err != nil {
		return err
	}
	options := map[string]any{}
	stop, err := openaiStop(req.Stop, true)
	if err != nil {
		return err
	}
	if stop != nil {
		options["stop"] = stop
	}
	if req.MaxTokens != nil {
		options["num_predict"] = *req.MaxTokens
	}
	job := completionJob{
		model:    req.Model,
		contents: []string{req.Prompt},
		empty:    req.Prompt == "",
		stream:   req.Stream,
		options:  options,
		suffix:   req.Suffix != "",
	}
	out := &openaiCompletionWire{
		s: s, w: w, sse: sse{w: w}, model: req.Model, stream: req.Stream,
		id:           fmt.Sprintf("cmpl-%d", s.nextID()),
		includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage,
	}
	return s.runCompletion(w, r, job, out)
}

// sse writes Server-Sent Events, flushing each.
type sse struct {
	w       http.ResponseWriter
	started bool
}

func (e *sse) data(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.raw(fmt.Sprintf("data: %s\n\n", b))
}

func (e *sse) raw(s string) error {
	if !e.started {
		e.w.Header().Set("Content-Type", "text/event-stream")
		e.started = true
	}
	if _, err := e.w.Write([]byte(s)); err != nil {
		return err
	}
	return flush(e.w)
}

func usageOf(m Metrics) Usage {
	return Usage{
		PromptTokens:     m.PromptEvalCount,
		CompletionTokens: m.EvalCount,
		TotalTokens:      m.PromptEvalCount + m.EvalCount,
	}
}

func reasonPtr(reason string) *string {
	if reason == "" {
		return nil
	}
	return &reason
}

// openaiChatWire writes /v1/chat/completions answers.
type openaiChatWire struct {
	s            *server
	w            http.ResponseWriter
	sse          sse
	id           string
	model        string
	stream       bool
	includeUsage bool
}

func (c *openaiChatWire) chunk(content, reason string) ChatCompletionChunk {
	return ChatCompletionChunk{
		ID:                c.id,
		Object:            "chat.completion.chunk",
		Created:           c.s.clock.Now().Unix(),
		Model:             c.model,
		SystemFingerprint: "fp_ollama",
		Choices: []ChunkChoice{{
			Delta:        OpenAIMessage{Role: "assistant", Content: content},
			FinishReason: reasonPtr(reason),
		}},
	}
}

func (c *openaiChatWire) token(text string) error {
	return c.sse.data(c.chunk(text, ""))
}

func (c *openaiChatWire) finish(f finished) error {
	if c.stream {
		last := c.chunk("", f.doneReason)
		if err := c.sse.data(last); err != nil {
			return err
		}
		if c.includeUsage {
			u := usageOf(f.metrics)
			last.Usage = &u
			last.Choices = []ChunkChoice{}
			if err := c.sse.data(last); err != nil {
				return err
			}
		}
		return c.sse.raw("data: [DONE]\n\n")
	}
	writeOpenAIJSON(c.w, http.StatusOK, ChatCompletion{
		ID:                c.id,
		Object:            "chat.completion",
		Created:           c.s.clock.Now().Unix(),
		Model:             c.model,
		SystemFingerprint: "fp_ollama",
		Choices: []Choice{{
			Message:      OpenAIMessage{Role: "assistant", Content: f.content},
			FinishReason: reasonPtr(f.doneReason),
		}},
		Usage: usageOf(f.metrics),
	})
	return nil
}

// openaiCompletionWire writes /v1/completions answers. Like Ollama, with
// include_usage every chunk carries a zero usage and an extra last chunk
// the real one.
type openaiCompletionWire struct {
	s            *server
	w            http.ResponseWriter
	sse          sse
	id           string
	model        string
	stream       bool
	includeUsage bool
}

func (c *openaiCompletionWire) chunk(text, reason string) CompletionChunk {
	ch := CompletionChunk{
		ID:                c.id,
		Object:            "text_completion",
		Created:           c.s.clock.Now().Unix(),
		Choices:           []CompleteChunkChoice{{Text: text, FinishReason: reasonPtr(reason)}},
		Model:             c.model,
		SystemFingerprint: "fp_ollama",
	}
	if c.includeUsage {
		ch.Usage = &Usage{}
	}
	return ch
}

func (c *openaiCompletionWire) token(text string) error {
	return c.sse.data(c.chunk(text, ""))
}

func (c *openaiCompletionWire) finish(f finished) error {
	if c.stream {
		last := c.chunk("", f.doneReason)
		if err := c.sse.data(last); err != nil {
			return err
		}
		if c.includeUsage {
			u := usageOf(f.metrics)
			last.Usage = &u
			last.Choices = []CompleteChunkChoice{}
			if err := c.sse.data(last); err != nil {
				return err
			}
		}
		return c.sse.raw("data: [DONE]\n\n")
	}
	writeOpenAIJSON(c.w, http.StatusOK, Completion{
		ID:                c.id,
		Object:            "text_completion",
		Created:           c.s.clock.Now().Unix(),
		Model:             c.model,
		SystemFingerprint: "fp_ollama",
		Choices:           []CompleteChunkChoice{{Text: f.content, FinishReason: reasonPtr(f.doneReason)}},
		Usage:             usageOf(f.metrics),
	})
	return nil
}

func (s *server) handleOpenAIEmbeddings(w http.ResponseWriter, r *http.Request) error {
	var req OpenAIEmbedRequest
	if err := decodeOpenAI(r, &req); err != nil {
		return err
	}
	if req.EncodingFormat != "" && !strings.EqualFold(req.EncodingFormat, "float") && !strings.EqualFold(req.EncodingFormat, "base64") {
		return badRequest("Invalid value for 'encoding_format' = %s. Supported values: ['float', 'base64'].", req.EncodingFormat)
	}
	if req.Input == "" {
		req.Input = []any{""}
	}
	if req.Input == nil {
		return badRequest("invalid input")
	}
	if v, ok := req.Input.([]any); ok && len(v) == 0 {
		return badRequest("invalid input")
	}
	resp, err := s.embed(r, EmbedRequest{Model: req.Model, Input: req.Input, Dimensions: req.Dimensions})
	if err != nil {
		return err
	}
	list := EmbeddingList{
		Object: "list",
		Model:  req.Model,
		Usage:  EmbeddingUsage{PromptTokens: resp.PromptEvalCount, TotalTokens: resp.PromptEvalCount},
	}
	for i, e := range resp.Embeddings {
		var v any = e
		if strings.EqualFold(req.EncodingFormat, "base64") {
			v = floatsToBase64(e)
		}
		list.Data = append(list.Data, Embedding{Object: "embedding", Embedding: v, Index: i})
	}
	writeOpenAIJSON(w, http.StatusOK, list)
	return nil
}

func floatsToBase64(v []float32) string {
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.LittleEndian, v)
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func (s *server) handleListModels(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.store.manifests()
	if err != nil {
		return err
	}
	slices.SortStableFunc(ms, func(a, b *storedManifest) int {
		return cmp.Or(cmp.Compare(b.modified.Unix(), a.modified.Unix()), cmp.Compare(a.name.short(), b.name.short()))
	})
	list := ListCompletion{Object: "list"}
	for _, m := range ms {
		list.Data = append(list.Data, OpenAIModel{
			ID:      m.name.short(),
			Object:  "model",
			Created: m.modified.Unix(),
			OwnedBy: parseName(m.name.short()).namespace,
		})
	}
	writeOpenAIJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) handleRetrieveModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("model")
	resp, err := s.show(ShowRequest{Name: id})
	if err != nil {
		return err
	}
	writeOpenAIJSON(w, http.StatusOK, OpenAIModel{
		ID:      id,
		Object:  "model",
		Created: resp.ModifiedAt.Unix(),
		OwnedBy: parseName(id).namespace,
	})
	return nil
}
