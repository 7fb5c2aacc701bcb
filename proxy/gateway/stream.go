package gateway

import (
	"bytes"
	"encoding/json"
	"sync"
)

// bufPool holds copy buffers so a stream costs no allocation per chunk.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
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
	usageKey    = []byte(`"usage":{`)
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
func answerCounts(openAI bool, body []byte) counts {
	if openAI {
		var u openAIUsage
		if json.Unmarshal(body, &u) == nil && u.Usage != nil {
			return counts{u.Usage.PromptTokens, u.Usage.CompletionTokens, true}
		}
		return counts{}
	}
	var o ollamaCounts
	if json.Unmarshal(body, &o) == nil && (o.PromptEvalCount > 0 || o.EvalCount > 0) {
		return counts{o.PromptEvalCount, o.EvalCount, true}
	}
	return counts{}
}

// framer cuts a stream into whole events (SSE) or lines (NDJSON) across
// reads, so each can be inspected: the proper end, the usage counts, and
// generated text for the filter. Complete frames pass through at once;
// only an incomplete tail waits for its rest.
type framer struct {
	sse bool
	// dropUsage removes the usage-only SSE event corral asked for when the
	// client did not.
	dropUsage bool
	filter    StreamFilter // nil: no output filter

	pending *[]byte
	out     []byte // frames to write for the current read
	ended   bool   // saw [DONE], done:true, or an error the instance reported
	counts  counts
	hit     string // filter phrase found in the output
}

func newFramer(sse, dropUsage bool, filter StreamFilter) *framer {
	return &framer{sse: sse, dropUsage: dropUsage, filter: filter, pending: framePool.Get().(*[]byte)}
}

func (f *framer) release() {
	*f.pending = (*f.pending)[:0]
	framePool.Put(f.pending)
	f.pending = nil
}

// feed takes one read and returns what to write to the client now. The
// returned slice is valid until the next feed (it may alias p).
func (f *framer) feed(p []byte) []byte {
	sep := ndjsonSep
	if f.sse {
		sep = sseSep
	}
	buf, inPending := p, len(*f.pending) > 0
	if inPending {
		buf = append(*f.pending, p...)
		*f.pending = buf
	}
	f.out = f.out[:0]
	// Kept frames go out straight from buf unless one is dropped or buf is
	// the pending buffer (rewritten below): then they are copied to f.out.
	copying := inPending
	start := 0
	for f.hit == "" {
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
	*f.pending = append((*f.pending)[:0], buf[start:]...)
	return out
}

// tail returns bytes that never formed a whole frame, for a stream that
// ends without its separator.
func (f *framer) tail() []byte { return *f.pending }

// inspect looks at one frame and reports whether it goes to the client.
func (f *framer) inspect(frame []byte) bool {
	if f.sse {
		data, ok := bytes.CutPrefix(frame, dataPrefix)
		if !ok {
			return true // comments and other fields pass
		}
		data = bytes.TrimRight(data, "\n")
		switch {
		case bytes.Equal(data, doneEvent), bytes.HasPrefix(data, errorPrefix):
			f.ended = true
		case bytes.Contains(data, usageKey):
			var u openAIUsage
			if json.Unmarshal(data, &u) == nil && u.Usage != nil {
				f.counts = counts{u.Usage.PromptTokens, u.Usage.CompletionTokens, true}
				if f.dropUsage && bytes.Contains(data, noChoices) {
					return false
				}
			}
		}
	} else {
		switch {
		case bytes.HasPrefix(frame, errorPrefix):
			f.ended = true
		case bytes.Contains(frame, doneTrue):
			f.ended = true
			var o ollamaCounts
			if json.Unmarshal(frame, &o) == nil {
				f.counts = counts{o.PromptEvalCount, o.EvalCount, true}
			}
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
