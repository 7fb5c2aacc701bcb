package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// dialect is which API a request speaks; errors answer in its shape.
type dialect int

const (
	dialectOllama dialect = iota // {"error":"..."}
	dialectOpenAI                // {"error":{"message","type","param","code"}}
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
	if d == dialectOpenAI {
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
	} else {
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

// streamError is the last event of a stream that failed after it started:
// SSE clients get an error event, NDJSON clients an error line, as the
// OpenAI and Ollama clients expect.
func streamError(sse bool, msg, code string) []byte {
	if sse {
		b := apiError{Status: http.StatusBadGateway, Message: msg, Code: code}.body(dialectOpenAI)
		return append(append([]byte("data: "), b[:len(b)-1]...), "\n\n"...)
	}
	return apiError{Message: msg}.body(dialectOllama)
}
