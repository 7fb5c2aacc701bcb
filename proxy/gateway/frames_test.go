package gateway

import (
	"bytes"
	"strings"
	"testing"
)

// feedAll runs chunks through a framer and returns what the client gets.
func feedAll(f *framer, chunks ...string) string {
	var out bytes.Buffer
	for _, c := range chunks {
		out.Write(f.feed([]byte(c)))
	}
	out.Write(f.tail())
	return out.String()
}

func TestFramerSSE(t *testing.T) {
	content := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
	usage := "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":6,\"completion_tokens\":5,\"total_tokens\":11}}\n\n"
	done := "data: [DONE]\n\n"
	whole := content + usage + done
	cases := []struct {
		name   string
		chunks []string
		drop   bool
		want   string
	}{
		{"one frame per read", []string{content, usage, done}, false, whole},
		{"all in one read", []string{whole}, false, whole},
		{"split everywhere", strings.SplitAfter(whole, "e"), false, whole},
		{"usage dropped", []string{content, usage, done}, true, content + done},
		{"usage dropped, split", []string{whole[:10], whole[10:70], whole[70:]}, true, content + done},
		{"comments pass", []string{": keep-alive\n\n", whole}, true, ": keep-alive\n\n" + content + done},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFramer(true, tc.drop, nil)
			defer f.release()
			if got := feedAll(&f, tc.chunks...); got != tc.want {
				t.Fatalf("client got\n%q\nwant\n%q", got, tc.want)
			}
			if !f.ended || !f.counts.Known || f.counts.Prompt != 6 || f.counts.Completion != 5 {
				t.Fatalf("ended %v counts %+v", f.ended, f.counts)
			}
			// Reads of whole frames take no buffer for a rest.
			if whole := tc.name == "one frame per read" || tc.name == "all in one read"; whole && f.pending != nil {
				t.Fatal("took a pending buffer for reads of whole frames")
			}
			if len(f.tail()) != 0 {
				t.Fatalf("tail %q after the whole stream", f.tail())
			}
		})
	}
}

func TestFramerNDJSON(t *testing.T) {
	lines := `{"message":{"content":"a"},"done":false}` + "\n" +
		`{"message":{"content":""},"done_reason":"stop","done":true,"prompt_eval_count":7,"eval_count":3}` + "\n"
	for _, chunks := range [][]string{{lines}, strings.SplitAfter(lines, ","), {lines[:5], lines[5:]}} {
		f := newFramer(false, false, nil)
		if got := feedAll(&f, chunks...); got != lines {
			t.Fatalf("client got %q", got)
		}
		if !f.ended || f.counts != (counts{7, 3, true}) {
			t.Fatalf("ended %v counts %+v", f.ended, f.counts)
		}
		f.release()
	}
	// A stream that stops early is not ended; its partial line still goes out.
	f := newFramer(false, false, nil)
	defer f.release()
	if got := feedAll(&f, `{"message":{"content":"a"},"done":false}`+"\n"+`{"mess`); !strings.HasSuffix(got, `{"mess`) || f.ended {
		t.Fatalf("got %q ended %v", got, f.ended)
	}
}

type phraseFilter string

func (p phraseFilter) Prompt(_ string, body []byte) (string, bool) {
	return string(p), bytes.Contains(body, []byte(p))
}
func (p phraseFilter) NewStream() StreamFilter { return &phraseStream{phrase: string(p)} }

type phraseStream struct {
	phrase string
	seen   strings.Builder
}

func (s *phraseStream) Feed(_ bool, frame []byte) (string, bool) {
	// The real filter decodes the delta text; this fake takes the first
	// "content" string as it is.
	if _, after, ok := bytes.Cut(frame, []byte(`"content":"`)); ok {
		text, _, _ := bytes.Cut(after, []byte(`"`))
		s.seen.Write(text)
	}
	return s.phrase, strings.Contains(s.seen.String(), s.phrase)
}

func TestFramerFilterStops(t *testing.T) {
	f := newFramer(true, false, phraseFilter("secret").NewStream())
	defer f.release()
	a := "data: {\"choices\":[{\"delta\":{\"content\":\"the sec\"}}]}\n\n"
	b := "data: {\"choices\":[{\"delta\":{\"content\":\"ret plan\"}}]}\n\n"
	got := string(f.feed([]byte(a + b)))
	if got != a || f.hit != "secret" {
		t.Fatalf("got %q hit %q", got, f.hit)
	}
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[]}\n\ndata: [DONE]\n\n"), 3)
	f.Add([]byte(`{"done":false}`+"\n"+`{"done":true,"eval_count":2}`+"\n"), 1)
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		for _, sse := range []bool{true, false} {
			fm := newFramer(sse, false, nil)
			var out bytes.Buffer
			if cut <= 0 {
				cut = 1
			}
			for i := 0; i < len(stream); i += cut {
				out.Write(fm.feed(stream[i:min(i+cut, len(stream))]))
			}
			out.Write(fm.tail())
			if !bytes.Equal(out.Bytes(), stream) {
				t.Fatalf("framer changed the stream (sse %v):\n%q\n%q", sse, stream, out.Bytes())
			}
			fm.release()
		}
	})
}

// The key scan must agree with decoding the frame, and fall back to it
// where it cannot read the numbers.
func TestUsageCounts(t *testing.T) {
	cases := []struct {
		name   string
		openAI bool
		frame  string
		want   counts
	}{
		{"openai chunk", true, `{"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":345,"total_tokens":357}}`, counts{12, 345, true}},
		{"openai spaced", true, `{"usage": {"prompt_tokens": 7, "completion_tokens":	8}}`, counts{7, 8, true}},
		{"openai key order", true, `{"usage":{"completion_tokens":2,"prompt_tokens":1}}`, counts{1, 2, true}},
		{"openai no usage", true, `{"choices":[{"delta":{"content":"\"usage\":{\"prompt_tokens\":9"}}]}`, counts{}},
		{"openai usage null", true, `{"usage":null}`, counts{}},
		{"openai usage missing field", true, `{"usage":{"prompt_tokens":3}}`, counts{3, 0, true}},
		{"openai quoted number", true, `{"usage":{"prompt_tokens":"3","completion_tokens":4}}`, counts{}},
		{"ollama done", false, `{"model":"m","done":true,"prompt_eval_count":26,"eval_count":290}`, counts{26, 290, true}},
		{"ollama cached prompt", false, `{"done":true,"eval_count":5}`, counts{0, 5, true}},
		{"ollama content mentions key", false, `{"message":{"content":"\"eval_count\":99"},"done":true,"prompt_eval_count":1,"eval_count":2}`, counts{1, 2, true}},
		{"ollama null count", false, `{"done":true,"prompt_eval_count":null,"eval_count":4}`, counts{0, 4, true}},
		{"ollama huge count", false, `{"done":true,"prompt_eval_count":1234567890123456789012,"eval_count":4}`, counts{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got counts
			if tc.openAI {
				got = openAICounts([]byte(tc.frame))
			} else {
				got = ollamaAnswerCounts([]byte(tc.frame))
			}
			if got != tc.want {
				t.Errorf("counts of %s = %+v, want %+v", tc.frame, got, tc.want)
			}
		})
	}
}

// frames counts the generated chunks, the estimate of a stream whose
// counts never came, whether or not a chunk carries "usage":null.
func TestFramerCountsGeneratedFrames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sse    bool
		stream string
		want   int
	}{
		{"ollama sse", true, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n", 2},
		{"openai sse with usage null", true, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}],\"usage\":null}\n\n", 2},
		{"sse end and usage are not output", true, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n", 1},
		{"ndjson", false, "{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"message\":{\"content\":\"b\"},\"done\":false}\n{\"done\":true,\"eval_count\":2}\n", 2},
	} {
		f := newFramer(tc.sse, false, nil)
		f.feed([]byte(tc.stream))
		if f.frames != tc.want {
			t.Errorf("%s: frames = %d, want %d", tc.name, f.frames, tc.want)
		}
		f.release()
	}
}

// Nothing after the answer's end goes to the client, in the read that
// ends it or a later one.
func TestFramerStopsAtTheEnd(t *testing.T) {
	for _, tc := range []struct {
		sse        bool
		end, after string
	}{
		{true, "data: {\"choices\":[]}\n\ndata: [DONE]\n\n", "data: late\n\n"},
		{false, `{"message":{"content":"a"},"done":false}` + "\n" + `{"done":true,"eval_count":1}` + "\n", `{"late":true}` + "\n"},
	} {
		f := newFramer(tc.sse, false, nil)
		if got := feedAll(&f, tc.end+tc.after[:3], tc.after[3:], tc.after); got != tc.end || !f.ended || len(f.tail()) != 0 {
			t.Errorf("sse %v: client got %q (ended %v, tail %q), want %q", tc.sse, got, f.ended, f.tail(), tc.end)
		}
		f.release()
	}
}
