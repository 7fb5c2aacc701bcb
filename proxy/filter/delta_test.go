package filter

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestDeltaText(t *testing.T) {
	for _, c := range []struct {
		name  string
		sse   bool
		chunk string
		want  string
	}{
		{"openai chat", true, `data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}` + "\n\n", "Hello"},
		{"openai chat, two events", true,
			`data: {"choices":[{"delta":{"content":"Hel"}}]}` + "\n\n" + `data: {"choices":[{"delta":{"content":"lo"}}]}` + "\n\n", "Hello"},
		{"openai completions", true, `data: {"choices":[{"text":" world","index":0}]}` + "\n\n", " world"},
		{"no space after data:", true, `data:{"choices":[{"delta":{"content":"x"}}]}`, "x"},
		{"done and comments", true, ": keep-alive\n\ndata: [DONE]\n\n", ""},
		{"usage chunk", true, `data: {"choices":[],"usage":{"prompt_tokens":3}}` + "\n\n", ""},
		{"null content", true, `data: {"choices":[{"delta":{"content":null}}]}` + "\n\n", ""},
		{"escapes", true, `data: {"choices":[{"delta":{"content":"a\"b\\c\/d\n\u00e9\ud83d\ude00\t"}}]}`, "a\"b\\c/d\né😀\t"},
		{"lone surrogate", true, `data: {"choices":[{"delta":{"content":"\ud83dx\udc00"}}]}`, "\uFFFDx\uFFFD"},
		{"escaped key", true, `data: {"choi\u0063es":[{"delta":{"c\u006fntent":"k"}}]}`, "k"},
		{"content elsewhere ignored", true, `data: {"content":"no","choices":[{"message":{"content":"no"},"delta":{"x":{"content":"no"},"content":"yes"}}]}`, "yes"},
		{"several choices", true, `data: {"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]}`, "ab"},
		{"CRLF", true, "data: {\"choices\":[{\"delta\":{\"content\":\"r\"}}]}\r\n\r\n", "r"},
		{"invalid json", true, `data: {"choices":[{"delta":{"content":"x"}}]` + "\n", ""},
		{"trailing garbage", true, `data: {"choices":[{"delta":{"content":"x"}}]} x`, ""},
		{"responses delta", true, "event: response.output_text.delta\ndata: {\"content_index\":0,\"delta\":\"Hel\",\"type\":\"response.output_text.delta\"}\n\n", "Hel"},
		{"responses done not text", true, "event: response.output_text.done\ndata: {\"text\":\"Hello\",\"type\":\"response.output_text.done\"}\n\n", ""},
		{"messages text delta", true, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n", "lo"},
		{"messages tool json not text", true, "event: content_block_delta\ndata: {\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n", ""},
		{"messages usage delta", true, "event: message_delta\ndata: {\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n", ""},
		{"sse line in ndjson mode", false, `data: {"response":"x"}`, ""},
		{"ollama chat", false, `{"model":"m","created_at":"t","message":{"role":"assistant","content":"Hi"},"done":false}` + "\n", "Hi"},
		{"ollama generate", false, `{"model":"m","response":"Hi","done":false}` + "\n" + `{"model":"m","response":" there","done":false}` + "\n", "Hi there"},
		{"ollama done", false, `{"model":"m","response":"","done":true,"context":[1,2,3],"eval_count":9}` + "\n", ""},
		{"ollama thinking ignored", false, `{"message":{"role":"assistant","content":"a","thinking":"b"}}`, "a"},
		{"ollama error", false, `{"error":"boom"}` + "\n", ""},
		{"ndjson in sse mode", true, `{"response":"x"}`, ""},
		{"invalid utf8 kept as U+FFFD", false, "{\"response\":\"a\xffb\"}", "a\uFFFDb"},
		{"numbers and literals", false, `{"a":-1.5e+3,"b":[true,false,null,0,{}],"response":"n"}`, "n"},
		{"bad number", false, `{"a":01,"response":"n"}`, ""},
		{"control char in string", false, "{\"response\":\"a\tb\"}", ""},
		{"half a line", false, `{"response":"Hel`, ""},
		{"array top level", false, `["response","x"]`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := DeltaText(c.sse, []byte(c.chunk))
			if got != c.want {
				t.Errorf("DeltaText = %q, want %q", got, c.want)
			}
			if ref := refDeltaText(c.sse, []byte(c.chunk)); ref != c.want {
				t.Errorf("reference = %q, want %q (test case is wrong)", ref, c.want)
			}
		})
	}
}

func TestAppendDeltaTextKeepsDst(t *testing.T) {
	got := AppendDeltaText([]byte("pre:"), false, []byte(`{"response":"x"}`+"\n"+`{"response":`))
	if string(got) != "pre:x" {
		t.Errorf("got %q", got)
	}
}

func TestFeedDeltaSplitAnywhere(t *testing.T) {
	f := mustNew(t, "forbidden phrase")
	stream := `data: {"choices":[{"delta":{"content":"this is a forb"}}]}` + "\n\n" +
		`data: {"choices":[{"delta":{"content":"idden"}}]}` + "\n\n" +
		`data: {"choices":[{"delta":{"content":" phr\u0061se"}}]}` + "\n\n" +
		"data: [DONE]\n\n"
	done := strings.Index(stream, `phr\u0061se"}}]}`) + len(`phr\u0061se"}}]}`+"\n")
	// Cut in three reads anywhere, the stream matches with the read that
	// brings the newline ending the phrase's last line, not before.
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j += 7 {
			s := f.NewStream()
			pos := -1
			for _, cut := range [][2]int{{0, i}, {i, j}, {j, len(stream)}} {
				if _, ok := s.FeedDelta(true, []byte(stream[cut[0]:cut[1]])); ok && pos < 0 {
					pos = cut[1]
				}
			}
			want := len(stream)
			switch {
			case done-1 < i:
				want = i
			case done-1 < j:
				want = j
			}
			if pos != want {
				t.Fatalf("cut at %d,%d: matched with the read ending at %d, want %d", i, j, pos, want)
			}
		}
	}
}

func TestFeedDeltaNDJSONAndEnd(t *testing.T) {
	f := mustNew(t, "bad")
	s := f.NewStream()
	if _, ok := s.FeedDelta(false, []byte(`{"response":"b"}`+"\n"+`{"respo`)); ok {
		t.Fatal("matched early")
	}
	if _, ok := s.FeedDelta(false, []byte(`nse":"ad"}`)); ok {
		t.Fatal("matched a line not yet ended")
	}
	if p, ok := s.End(false); !ok || p != "bad" {
		t.Errorf("End = %q, %v; want bad", p, ok)
	}
}

func TestFeedDeltaLongLine(t *testing.T) {
	f := mustNew(t, "bad")
	s := f.NewStream()
	long := `{"response":"x","context":[` + strings.Repeat("1,", maxLine) + `1]}`
	for i := 0; i < len(long); i += 32 << 10 {
		if _, ok := s.FeedDelta(false, []byte(long[i:min(len(long), i+32<<10)])); ok {
			t.Fatal("matched")
		}
	}
	if len(s.tail) > maxLine {
		t.Fatalf("held %d bytes", len(s.tail))
	}
	if p, ok := s.FeedDelta(false, []byte("\n"+`{"response":"bad"}`+"\n")); !ok || p != "bad" {
		t.Errorf("after a long line: %q, %v", p, ok)
	}
}

// refDeltaText is DeltaText done with encoding/json: every line that is
// one valid JSON object, walked token by token, with the strings at the
// wanted paths collected.
func refDeltaText(sse bool, chunk []byte) string {
	var out strings.Builder
	for _, line := range bytes.Split(chunk, []byte("\n")) {
		if sse {
			if !bytes.HasPrefix(line, []byte("data:")) {
				continue
			}
			line = line[5:]
		}
		if !json.Valid(line) {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			continue
		}
		refObject(dec, nil, sse, &out)
	}
	return out.String()
}

func wanted(path []string, sse bool) bool {
	p := strings.Join(path, "/")
	if sse {
		return p == "choices/[]/delta/content" || p == "choices/[]/text" || p == "delta" || p == "delta/text"
	}
	return p == "message/content" || p == "response"
}

func refObject(dec *json.Decoder, path []string, sse bool, out *strings.Builder) {
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			panic(err)
		}
		refValue(dec, append(path[:len(path):len(path)], k.(string)), sse, out)
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		panic(err)
	}
}

func refValue(dec *json.Decoder, path []string, sse bool, out *strings.Builder) {
	tok, err := dec.Token()
	if err != nil {
		panic(err)
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			refObject(dec, path, sse, out)
			return
		}
		for dec.More() {
			refValue(dec, append(path[:len(path):len(path)], "[]"), sse, out)
		}
		dec.Token()
	case string:
		if wanted(path, sse) {
			out.WriteString(v)
		}
	}
}

func FuzzDeltaText(f *testing.F) {
	for _, s := range []string{
		`data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}` + "\n\n",
		`data: {"choices":[{"text":" world","index":0}]}` + "\n\ndata: [DONE]\n\n",
		`data: {"choices":[{"delta":{"content":"a\"b\\c\/d\n\u00e9\ud83d\ude00\t\ud800\udc00\udbff"}}]}`,
		`data: {"choi\u0063es":[{"delta":{"c\u006fntent":"k"}},[{"delta":{"content":"no"}}]]}`,
		": keep-alive\n\n",
		`{"model":"m","message":{"role":"assistant","content":"Hi"},"done":false}` + "\n" + `{"response":" there"}` + "\n",
		`{"model":"m","response":"","done":true,"context":[1,2,3],"eval_count":9,"x":-0.5e-7}` + "\n",
		"{\"response\":\"a\xffb\xe6\x97\"}",
		`{"response":"x","response":"y"}`,
		`{"a":[[[[{"response":"deep"}]]]],"response":tru}`,
	} {
		f.Add(true, []byte(s))
		f.Add(false, []byte(s))
	}
	f.Fuzz(func(t *testing.T, sse bool, chunk []byte) {
		got := DeltaText(sse, chunk)
		want := refDeltaText(sse, chunk)
		if got != want {
			t.Fatalf("DeltaText(%v, %q) = %q, encoding/json says %q", sse, chunk, got, want)
		}
	})
}

func BenchmarkDeltaTextSSE(b *testing.B) {
	chunk := []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"llama3","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}` + "\n\n")
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		buf = AppendDeltaText(buf[:0], true, chunk)
	}
}

func BenchmarkDeltaTextNDJSON(b *testing.B) {
	chunk := []byte(`{"model":"llama3","created_at":"2024-01-01T00:00:00.000000Z","message":{"role":"assistant","content":" token"},"done":false}` + "\n")
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		buf = AppendDeltaText(buf[:0], false, chunk)
	}
}
