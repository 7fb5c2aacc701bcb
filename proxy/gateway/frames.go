package gateway

import (
	"bytes"
	"encoding/json"
	"sync"
)

// bufPool holds copy buffers so a stream costs no allocation per chunk;
// one read takes at most what the Transport buffered.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 8<<10)
	return &b
}}

// framePool holds the buffers that reassemble events split across reads.
var framePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 64<<10)
	return &b
}}

var (
	sseSep      = []byte("\n\n")
	ndjsonSep   = []byte("\n")
	dataPrefix  = []byte("data: ")
	doneEvent   = []byte("[DONE]")
	errorPrefix = []byte(`{"error"`)
	doneTrue    = []byte(`"done":true`)
	usageKey    = []byte(`"usage"`)
	noChoices   = []byte(`"choices":[]`)
)

// counts are the upstream's own token counts for one request.
type counts struct {
	Prompt, Completion int
	Known              bool
}

// ollamaCounts and openAIUsage are the parts of a final answer that carry
// token counts: Ollama's last NDJSON line or whole answer, OpenAI's usage.
type ollamaCounts struct {
	PromptEvalCount int `json:"prompt_eval_count"`
	EvalCount       int `json:"eval_count"`
}

type openAIUsage struct {
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// answerCounts reads token counts from a whole (non-streamed) answer.
func answerCounts(rt route, body []byte) counts {
	switch {
	case rt.events != eventsNone:
		return tokenUsage(body, 0)
	case rt.dialect == dialectOpenAI:
		return openAICounts(body)
	}
	c := ollamaAnswerCounts(body)
	if c.Prompt == 0 && c.Completion == 0 {
		return counts{}
	}
	return c
}

// The counts sit in the last frame of every stream, so they are read by
// looking for their keys rather than decoding the frame: a key with its
// quotes cannot occur inside a JSON string, where quotes are escaped. A
// frame the scan cannot read is decoded properly.
var (
	promptTokensKey     = []byte(`"prompt_tokens":`)
	completionTokensKey = []byte(`"completion_tokens":`)
	promptEvalKey       = []byte(`"prompt_eval_count":`)
	evalKey             = []byte(`"eval_count":`)
)

// openAICounts reads the usage object of an OpenAI answer or chunk.
func openAICounts(data []byte) counts {
	i := bytes.Index(data, usageKey)
	if i < 0 {
		return counts{}
	}
	obj := bytes.TrimLeft(data[i+len(usageKey):], " \t")
	if obj, ok := bytes.CutPrefix(obj, []byte(":")); ok {
		obj = bytes.TrimLeft(obj, " \t")
		if bytes.HasPrefix(obj, []byte("null")) {
			return counts{} // OpenAI's chunks before the usage chunk
		}
		if obj, ok := bytes.CutPrefix(obj, []byte("{")); ok {
			p, ok1 := intAfter(obj, promptTokensKey)
			c, ok2 := intAfter(obj, completionTokensKey)
			if ok1 && ok2 {
				return counts{p, c, true}
			}
		}
	}
	var u openAIUsage
	if json.Unmarshal(data, &u) == nil && u.Usage != nil {
		return counts{u.Usage.PromptTokens, u.Usage.CompletionTokens, true}
	}
	return counts{}
}

// ollamaAnswerCounts reads the counts of Ollama's final line or answer; a
// count Ollama leaves out (a cached prompt) is zero.
func ollamaAnswerCounts(data []byte) counts {
	p, ok1 := intAfter(data, promptEvalKey)
	c, ok2 := intAfter(data, evalKey)
	if (ok1 || !bytes.Contains(data, promptEvalKey)) && (ok2 || !bytes.Contains(data, evalKey)) {
		return counts{p, c, true}
	}
	var o ollamaCounts
	if json.Unmarshal(data, &o) != nil {
		return counts{}
	}
	return counts{o.PromptEvalCount, o.EvalCount, true}
}

// intAfter parses the non-negative integer that follows key (spaces
// allowed); ok is false when key is missing or no integer follows.
func intAfter(data, key []byte) (n int, ok bool) {
	i := bytes.Index(data, key)
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(key):]
	rest = bytes.TrimLeft(rest, " \t")
	digits := 0
	for _, b := range rest {
		if b < '0' || b > '9' || digits == 18 {
			break
		}
		n = n*10 + int(b-'0')
		digits++
	}
	if digits == 0 || (digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9') {
		return 0, false
	}
	return n, true
}

// framer cuts a stream into whole events (SSE) or lines (NDJSON) across
// reads, so each can be inspected: the proper end, the usage counts, and
// generated text for the filter. Complete frames pass through at once;
// only an incomplete tail waits for its rest.
type framer struct {
	sse bool
	// events names the API of a stream of named events (zero: OpenAI's
	// chunks, or NDJSON).
	events eventAPI
	// dropUsage removes the usage-only SSE event corral asked for when the
	// client did not.
	dropUsage bool
	filter    StreamFilter // nil: no output filter

	pending *[]byte // an incomplete last frame; from framePool once needed
	out     []byte  // frames to write for the current read
	ended   bool    // saw [DONE], done:true, or an error the instance reported
	counts  counts
	// frames of generated output passed on: Ollama streams one token per
	// frame, so this is the completion's size when its counts never come.
	frames int
	hit    string // filter phrase found in the output
	// startInput is the prompt count a Messages stream announced at its
	// start, for a final usage that leaves it out.
	startInput int
}

// newFramer is a framer by value: a stream keeps it on its stack.
func newFramer(sse, dropUsage bool, filter StreamFilter) framer {
	return framer{sse: sse, dropUsage: dropUsage, filter: filter}
}

func (f *framer) release() {
	if f.pending != nil {
		*f.pending = (*f.pending)[:0]
		framePool.Put(f.pending)
		f.pending = nil
	}
}

// feed takes one read and returns what to write to the client now. The
// returned slice is valid until the next feed (it may alias p).
func (f *framer) feed(p []byte) []byte {
	sep := ndjsonSep
	if f.sse {
		sep = sseSep
	}
	buf, inPending := p, f.pending != nil && len(*f.pending) > 0
	if inPending {
		buf = append(*f.pending, p...)
		*f.pending = buf
	}
	f.out = f.out[:0]
	// Kept frames go out straight from buf unless one is dropped or buf is
	// the pending buffer (rewritten below): then they are copied to f.out.
	copying := inPending
	start := 0
	// Nothing after the answer's end is passed on: the instance has
	// nothing more to say, and the client may have its end already.
	for f.hit == "" && !f.ended {
		i := bytes.Index(buf[start:], sep)
		if i < 0 {
			break
		}
		end := start + i + len(sep)
		keep := f.inspect(buf[start:end])
		if !keep && !copying {
			f.out = append(f.out, buf[:start]...)
			copying = true
		}
		if keep && copying {
			f.out = append(f.out, buf[start:end]...)
		}
		start = end
	}
	out := buf[:start]
	if copying {
		out = f.out
	}
	rest := buf[start:]
	if f.ended {
		rest = nil
	}
	if len(rest) > 0 || inPending {
		// Usually every read ends with a whole frame, and no buffer is
		// taken for the rest.
		if f.pending == nil {
			f.pending = framePool.Get().(*[]byte)
		}
		*f.pending = append((*f.pending)[:0], rest...)
	}
	return out
}

// tail returns bytes that never formed a whole frame, for a stream that
// ends without its separator.
func (f *framer) tail() []byte {
	if f.pending == nil {
		return nil
	}
	return *f.pending
}

// inspect looks at one frame and reports whether it goes to the client.
func (f *framer) inspect(frame []byte) bool {
	if f.sse && f.events != eventsNone {
		f.inspectEvent(frame)
	} else if f.sse {
		data, ok := bytes.CutPrefix(frame, dataPrefix)
		if !ok {
			return true // comments and other fields pass
		}
		data = bytes.TrimRight(data, "\n")
		switch {
		case bytes.Equal(data, doneEvent), bytes.HasPrefix(data, errorPrefix):
			f.ended = true
		case bytes.Contains(data, usageKey):
			if c := openAICounts(data); c.Known {
				f.counts = c
				if f.dropUsage && bytes.Contains(data, noChoices) {
					return false
				}
			} else {
				f.frames++ // a content chunk with "usage":null, as OpenAI sends them
			}
		default:
			f.frames++
		}
	} else {
		switch {
		case bytes.HasPrefix(frame, errorPrefix):
			f.ended = true
		case bytes.Contains(frame, doneTrue):
			f.ended = true
			f.counts = ollamaAnswerCounts(frame)
		default:
			f.frames++
		}
	}
	if f.filter != nil && !f.ended {
		if phrase, hit := f.filter.Feed(f.sse, frame); hit {
			f.hit = phrase
			return false
		}
	}
	return true
}
