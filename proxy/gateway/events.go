package gateway

import (
	"bytes"
	"encoding/json"
)

// eventAPI is an API that streams named SSE events ("event: NAME" then
// "data: {...}"), whose end and token counts are events of their own,
// rather than OpenAI's data-only chunks.
type eventAPI uint8

const (
	eventsNone eventAPI = iota
	// eventsResponses is OpenAI's Responses API (/v1/responses): text
	// comes in response.*.delta events; the stream ends with
	// response.completed (or .incomplete, .failed), whose response object
	// has the usage (input_tokens, output_tokens), or with an error event.
	eventsResponses
	// eventsMessages is Anthropic's Messages API (/v1/messages): text comes
	// in content_block_delta events; message_start has the prompt's
	// input_tokens (Ollama's is an estimate there), message_delta the
	// final usage (Ollama's has both counts, exact), and message_stop or
	// an error event ends the stream.
	eventsMessages
)

var (
	eventPrefix = []byte("event:")
	deltaSuffix = []byte(".delta")
)

// eventParts returns an SSE event's type and its data (the first data
// line; these APIs send one). Either is empty when missing.
func eventParts(frame []byte) (name, data []byte) {
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if v, ok := bytes.CutPrefix(line, eventPrefix); ok {
			name = bytes.TrimPrefix(v, []byte(" "))
		} else if v, ok := bytes.CutPrefix(line, []byte("data:")); ok && data == nil {
			data = bytes.TrimPrefix(v, []byte(" "))
		}
	}
	return name, data
}

// inspectEvent looks at one event of a Responses or Messages stream:
// its end, its counts, and whether it carries generated text (for the
// estimate of a stream cut short).
func (f *framer) inspectEvent(frame []byte) {
	name, data := eventParts(frame)
	switch f.events {
	case eventsResponses:
		switch string(name) {
		case "response.completed", "response.incomplete", "response.failed":
			f.ended = true
			var e struct {
				Response json.RawMessage `json:"response"`
			}
			if json.Unmarshal(data, &e) == nil {
				f.counts = tokenUsage(e.Response, 0)
			}
		case "error":
			f.ended = true
		default:
			if bytes.HasSuffix(name, deltaSuffix) {
				f.frames++
			}
		}
	case eventsMessages:
		switch string(name) {
		case "message_start":
			var e struct {
				Message json.RawMessage `json:"message"`
			}
			if json.Unmarshal(data, &e) == nil {
				f.startInput = tokenUsage(e.Message, 0).Prompt
			}
		case "message_delta":
			// Cumulative: the input count here, when given, is the final one.
			f.counts = tokenUsage(data, f.startInput)
		case "message_stop", "error":
			f.ended = true
		case "content_block_delta":
			f.frames++
		}
	}
}

// tokenUsage reads {"usage":{"input_tokens":N,"output_tokens":M}} from an
// object, the shape of both the Responses and the Messages API; input
// stands in for a missing input_tokens. The object is decoded rather
// than scanned: its tools' schemas may name anything.
func tokenUsage(obj []byte, input int) counts {
	var v struct {
		Usage *struct {
			InputTokens  *int `json:"input_tokens"`
			OutputTokens *int `json:"output_tokens"`
		} `json:"usage"`
	}
	if len(obj) == 0 || json.Unmarshal(obj, &v) != nil || v.Usage == nil {
		return counts{}
	}
	if v.Usage.InputTokens != nil {
		input = *v.Usage.InputTokens
	}
	if v.Usage.OutputTokens == nil {
		return counts{Prompt: input}
	}
	return counts{Prompt: input, Completion: *v.Usage.OutputTokens, Known: true}
}
