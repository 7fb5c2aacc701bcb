package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// responsesAPI answers /v1/responses as Ollama 0.17 does (openai/responses.go
// and middleware/openai.go): named events, the usage in response.completed.
// Its tools' schema names "usage" and "input_tokens", which a scan for the
// keys would trip on. X-Cut makes it drop the stream after its deltas.
func responsesAPI(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Stream bool `json:"stream"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	const tools = `"tools":[{"type":"function","name":"f","parameters":{"properties":{"usage":{"type":"object","properties":{"input_tokens":{"type":"integer"}}}}}}]`
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"m","output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"a b","annotations":[],"logprobs":[]}]}],`+tools+`,"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7,"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":0}}}`+"\n")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	seq := 0
	event := func(name, data string) {
		fmt.Fprintf(w, "event: %s\ndata: {%s,\"sequence_number\":%d,\"type\":%q}\n\n", name, data, seq, name)
		seq++
		w.(http.Flusher).Flush()
	}
	resp := func(status, usage string) string {
		return `"response":{"id":"resp_1","object":"response","status":"` + status + `",` + tools + `,"usage":` + usage + `}`
	}
	event("response.created", resp("in_progress", "null"))
	event("response.in_progress", resp("in_progress", "null"))
	event("response.output_item.added", `"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]},"output_index":0`)
	event("response.content_part.added", `"content_index":0,"item_id":"msg_1","output_index":0,"part":{"type":"output_text","text":""}`)
	for _, d := range []string{"a", " b"} {
		event("response.output_text.delta", `"content_index":0,"delta":"`+d+`","item_id":"msg_1","logprobs":[],"output_index":0`)
	}
	if r.Header.Get("X-Cut") != "" {
		panic(http.ErrAbortHandler)
	}
	event("response.output_text.done", `"content_index":0,"item_id":"msg_1","text":"a b","output_index":0`)
	event("response.completed", resp("completed", `{"input_tokens":5,"output_tokens":2,"total_tokens":7}`))
}

// messagesAPI answers /v1/messages as Ollama 0.17 does (anthropic/anthropic.go):
// message_start with an estimate of the input, message_delta with both
// counts, exact. X-Cut drops the stream after its deltas.
func messagesAPI(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Stream bool `json:"stream"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"a b"}],"stop_reason":"end_turn","usage":{"input_tokens":6,"output_tokens":2}}`+"\n")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	event := func(name, data string) {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
		w.(http.Flusher).Flush()
	}
	event("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":3,"output_tokens":0}}}`)
	event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	for _, d := range []string{"a", " b"} {
		event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`+d+`"}}`)
	}
	if r.Header.Get("X-Cut") != "" {
		panic(http.ErrAbortHandler)
	}
	event("content_block_stop", `{"type":"content_block_stop","index":0}`)
	event("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":6,"output_tokens":2}}`)
	event("message_stop", `{"type":"message_stop"}`)
}

func eventAPIs(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/responses":
		responsesAPI(w, r)
	case "/v1/messages":
		messagesAPI(w, r)
	default:
		http.NotFound(w, r)
	}
}

// The Responses and Messages APIs pass through with their own events,
// metered with the instance's own counts, streamed or not; a stream cut
// short ends with the API's error event and is estimated.
func TestResponsesAndMessagesMetered(t *testing.T) {
	up := upstream(t, "i0", eventAPIs, "m:latest")
	meter := &fakeMeter{}
	_, _, srv := newTestGateway(t, Config{Meter: meter, DefaultMaxTokens: 1000}, up)
	for _, tc := range []struct {
		name, path, body string
		cut              bool
		prompt, compl    int
		known            bool
		reserved         int
		last             string // the end of what the client gets
	}{
		{"responses", "/v1/responses", `{"model":"m","input":"hi","max_output_tokens":20}`, false, 5, 2, true, 20 + 12, `"total_tokens":7,"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":0}}}` + "\n"},
		{"responses streamed", "/v1/responses", `{"model":"m","input":"hi","stream":true}`, false, 5, 2, true, 1000 + 10, "event: response.completed\n"},
		{"responses cut", "/v1/responses", `{"model":"m","input":"four chars a token","stream":true}`, true, 5, 2, false, 1000 + 14, "event: error\ndata: {\"type\":\"error\",\"code\":\"upstream_stream_error\""},
		{"messages", "/v1/messages", `{"model":"m","max_tokens":30,"messages":[{"role":"user","content":"hi"}]}`, false, 6, 2, true, 30 + 18, `"usage":{"input_tokens":6,"output_tokens":2}}` + "\n"},
		{"messages streamed", "/v1/messages", `{"model":"m","max_tokens":30,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, false, 6, 2, true, 30 + 21, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
		{"messages cut", "/v1/messages", `{"model":"m","max_tokens":30,"stream":true,"system":[{"type":"text","text":"abcd"}],"messages":[{"role":"user","content":"efgh"}]}`, true, 2, 2, false, 30 + 32, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meter.mu.Lock()
			meter.settled, meter.reserved = nil, nil
			meter.mu.Unlock()
			req, _ := http.NewRequest("POST", srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.path == "/v1/messages" {
				req.Header.Set("x-api-key", "good") // as Anthropic's clients send it
				req.Header.Set("anthropic-version", "2023-06-01")
			} else {
				req.Header.Set("Authorization", "Bearer good")
			}
			if tc.cut {
				req.Header.Set("X-Cut", "1")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tc.cut {
				if !strings.Contains(body, tc.last) || !strings.HasSuffix(body, "\n\n") {
					t.Fatalf("cut stream ends\n%s\nwant %q", body, tc.last)
				}
			} else if !strings.Contains(body, tc.last) {
				t.Fatalf("answer\n%s\nlacks %q", body, tc.last)
			}
			us := meter.waitSettled()
			if len(us) != 1 {
				t.Fatalf("settled %d times", len(us))
			}
			u := us[0]
			if u.CountsKnown != tc.known || u.PromptTokens != tc.prompt || u.CompletionTokens != tc.compl || u.Route != tc.path || u.Key != "tester" {
				t.Fatalf("settled %+v, want prompt %d completion %d known %v", u, tc.prompt, tc.compl, tc.known)
			}
			meter.mu.Lock()
			reserved := meter.reserved[0]
			meter.mu.Unlock()
			if reserved != tc.reserved {
				t.Fatalf("reserved %d, want %d", reserved, tc.reserved)
			}
		})
	}
}

// Errors on /v1/messages come in Anthropic's shape, the key from x-api-key
// or a bearer, and neither reaches the instance.
func TestMessagesErrorsAndKeys(t *testing.T) {
	var sawKey string
	up := upstream(t, "i0", func(w http.ResponseWriter, r *http.Request) {
		sawKey = r.Header.Get("X-Api-Key") + r.Header.Get("Authorization")
		messagesAPI(w, r)
	}, "m:latest")
	_, _, srv := newTestGateway(t, Config{}, up)
	do := func(key, header, body string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/messages", strings.NewReader(body))
		if key != "" {
			req.Header.Set(header, key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp)
	}
	ok := `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		name, key, header, body string
		status                  int
		want                    string
	}{
		{"no key", "", "", ok, 401, `{"type":"error","error":{"type":"authentication_error","message":"missing API key: send x-api-key`},
		{"bad key", "nope", "x-api-key", ok, 401, `"type":"authentication_error"`},
		{"unknown model", "good", "x-api-key", `{"model":"zz","max_tokens":5,"messages":[]}`, 404, `{"type":"error","error":{"type":"not_found_error","message":"model \"zz:latest\" not found`},
		{"model not allowed", "good", "x-api-key", `{"model":"secret","max_tokens":5,"messages":[]}`, 403, `"type":"permission_error"`},
		{"bad json", "good", "x-api-key", `{"model":`, 400, `"type":"invalid_request_error"`},
		{"x-api-key", "good", "x-api-key", ok, 200, `"usage":{"input_tokens":6`},
		{"bearer", "Bearer good", "Authorization", ok, 200, `"usage":{"input_tokens":6`},
	} {
		sawKey = ""
		code, body := do(tc.key, tc.header, tc.body)
		if code != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, code, body, tc.status, tc.want)
		}
		if sawKey != "" {
			t.Errorf("%s: the instance got the key %q", tc.name, sawKey)
		}
	}
}

func TestFramerEvents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events eventAPI
		stream string
		ended  bool
		counts counts
		frames int
	}{
		{"responses", eventsResponses,
			"event: response.created\ndata: {\"response\":{\"usage\":null},\"type\":\"response.created\"}\n\n" +
				"event: response.output_text.delta\ndata: {\"delta\":\"a\"}\n\n" +
				"event: response.reasoning_summary_text.delta\ndata: {\"delta\":\"b\"}\n\n" +
				"event: response.completed\ndata: {\"response\":{\"tools\":[{\"parameters\":{\"usage\":{\"input_tokens\":99}}}],\"usage\":{\"input_tokens\":4,\"output_tokens\":2}}}\n\n",
			true, counts{4, 2, true}, 2},
		{"responses incomplete", eventsResponses,
			"event: response.incomplete\ndata: {\"response\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":9}}}\n\n", true, counts{4, 9, true}, 0},
		{"responses error", eventsResponses, "event: error\ndata: {\"type\":\"error\",\"message\":\"x\"}\n\n", true, counts{}, 0},
		{"responses cut", eventsResponses, "event: response.output_text.delta\ndata: {\"delta\":\"a\"}\n\n", false, counts{}, 1},
		{"messages", eventsMessages,
			"event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n" +
				"event: ping\ndata: {\"type\":\"ping\"}\n\n" +
				"event: content_block_delta\ndata: {\"delta\":{\"text\":\"a\"}}\n\n" +
				"event: message_delta\ndata: {\"usage\":{\"output_tokens\":5}}\n\n" +
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			true, counts{3, 5, true}, 1},
		{"messages final input wins", eventsMessages,
			"event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n" +
				"event:message_delta\r\ndata:{\"usage\":{\"input_tokens\":7,\"output_tokens\":5}}\r\n\n",
			false, counts{7, 5, true}, 0},
	} {
		f := newFramer(true, false, nil)
		f.events = tc.events
		if got := feedAll(&f, strings.SplitAfter(tc.stream, "a")...); got != tc.stream {
			t.Errorf("%s: client got %q", tc.name, got)
		}
		if f.ended != tc.ended || f.counts != tc.counts || f.frames != tc.frames {
			t.Errorf("%s: ended %v counts %+v frames %d, want %v %+v %d", tc.name, f.ended, f.counts, f.frames, tc.ended, tc.counts, tc.frames)
		}
		f.release()
	}
}
