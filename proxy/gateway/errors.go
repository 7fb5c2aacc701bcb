package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"corral/proxy/redact"
)

// dialect is which API a request speaks; errors answer in its shape.
type dialect int

const (
	dialectOllama    dialect = iota // {"error":"..."}
	dialectOpenAI                   // {"error":{"message","type","param","code"}}
	dialectAnthropic                // {"type":"error","error":{"type","message"}}
)

// apiError is an error the client sees, in its API's own shape.
type apiError struct {
	Status     int
	Message    string
	Type       string // OpenAI error type
	Code       string // OpenAI error code
	Param      string
	RetryAfter time.Duration
}

func (e apiError) body(d dialect) []byte {
	var v any
	switch d {
	case dialectAnthropic:
		type inner struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		v = struct {
			Type  string `json:"type"`
			Error inner  `json:"error"`
		}{"error", inner{anthropicType(e.Status), e.Message}}
	case dialectOpenAI:
		type inner struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		}
		in := inner{Message: e.Message, Type: e.Type}
		if in.Type == "" {
			in.Type = openAIType(e.Status)
		}
		if e.Param != "" {
			in.Param = &e.Param
		}
		if e.Code != "" {
			in.Code = &e.Code
		}
		v = struct {
			Error inner `json:"error"`
		}{in}
	default:
		v = struct {
			Error string `json:"error"`
		}{e.Message}
	}
	b, _ := json.Marshal(v)
	return append(b, '\n')
}

func openAIType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// anthropicType is the error type Anthropic's API gives a status.
func anthropicType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	}
	if status >= 400 && status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

func (e apiError) write(w http.ResponseWriter, d dialect) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(max(e.RetryAfter.Seconds(), 1))))
	}
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="corral"`)
	}
	w.WriteHeader(e.Status)
	w.Write(e.body(d))
}

// streamError is the last event of a stream that failed after it started,
// in the shape each API's clients expect: an OpenAI chunk stream gets a
// data event with an error object, the Responses API an "error" event,
// the Messages API Anthropic's "error" event, and NDJSON an error line.
func streamError(rt route, msg, code string) []byte {
	if !rt.sse {
		return apiError{Message: msg}.body(dialectOllama)
	}
	var b []byte
	switch rt.events {
	case eventsResponses:
		b, _ = json.Marshal(struct {
			Type    string  `json:"type"`
			Code    string  `json:"code"`
			Message string  `json:"message"`
			Param   *string `json:"param"`
		}{"error", code, msg, nil})
		return sseEvent("error", b)
	case eventsMessages:
		b = apiError{Status: http.StatusBadGateway, Message: msg}.body(dialectAnthropic)
		return sseEvent("error", b[:len(b)-1])
	}
	b = apiError{Status: http.StatusBadGateway, Message: msg, Code: code}.body(dialectOpenAI)
	return append(append([]byte("data: "), b[:len(b)-1]...), "\n\n"...)
}

// sseEvent is one SSE event with a type.
func sseEvent(name string, data []byte) []byte {
	out := make([]byte, 0, len(name)+len(data)+16)
	out = append(append(append(out, "event: "...), name...), "\ndata: "...)
	return append(append(out, data...), "\n\n"...)
}

// public is text from an instance or about one (its status, its error
// message) as a client may read it: without internal addresses. The
// engine's statuses hold none (Upstream.Status); this keeps an
// instance's own words, or a status from another source, from adding one.
func public(s string) string {
	return redact.Addresses(s)
}
