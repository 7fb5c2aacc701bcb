package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// api is the wire format a scenario speaks.
type api struct {
	name string // "openai" or "ollama"
	path string
	sse  bool // SSE with data: [DONE]; else NDJSON ending in "done":true
}

var (
	apiOpenAI = api{name: "openai", path: "/v1/chat/completions", sse: true}
	apiOllama = api{name: "ollama", path: "/api/chat"}
)

// requestBody is a streaming chat request for model.
func requestBody(model string) []byte {
	return fmt.Appendf(nil, `{"model":%q,"stream":true,"messages":[{"role":"user","content":"Say the alphabet."}]}`, model)
}

// target is one way to reach the simulator.
type target struct {
	name   string // direct, gateway, nginx
	base   string
	client *http.Client
	pids   func() []int // processes whose CPU and memory count; nil for direct
}

// newClient is a load client sized for the concurrency: an idle pool as
// large as the number of workers (Go's default of 2 churns connections),
// no compression, HTTP/1.1.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
}

// load is one measurement: concurrency workers, each sending requests one
// after another until the duration is over (or requests were sent).
type load struct {
	api         api
	body        []byte
	key         string
	concurrency int
	duration    time.Duration
	requests    int           // 0: no cap
	minRequests int           // keep going past duration until this many were sent (up to 10x duration)
	wantChunks  int           // content chunks a complete stream has
	latency     bool          // record time to first token and gaps
	timeout     time.Duration // per request
}

// sample is what a measurement found.
type sample struct {
	requests int // completed, failed ones included
	failures int
	// chunks are the content chunks (tokens) the streams brought, failed
	// ones' included: what the way through passed on, for CPU per chunk.
	chunks  int
	elapsed time.Duration // from the first request to the last answer
	ttft    []time.Duration
	gaps    []time.Duration
	errors  map[string]int // failure reason → count
	example string         // one failure in full
}

func (s *sample) add(o sample) {
	s.requests += o.requests
	s.failures += o.failures
	s.chunks += o.chunks
	s.elapsed += o.elapsed
	s.ttft = append(s.ttft, o.ttft...)
	s.gaps = append(s.gaps, o.gaps...)
	for k, v := range o.errors {
		if s.errors == nil {
			s.errors = map[string]int{}
		}
		s.errors[k] += v
	}
	if s.example == "" {
		s.example = o.example
	}
}

func (s *sample) fail(reason, detail string) {
	s.failures++
	if s.errors == nil {
		s.errors = map[string]int{}
	}
	s.errors[reason]++
	if s.example == "" {
		s.example = reason + ": " + detail
	}
}

// run applies the load to t. An error means ctx ended.
func (l load) run(ctx context.Context, t *target) (sample, error) {
	start := time.Now()
	deadline := start.Add(l.duration)
	// Long streams at low concurrency give few samples in the duration:
	// a median of a dozen is noise, so run on to minRequests, within bounds.
	hardDeadline := deadline
	if l.minRequests > 0 {
		hardDeadline = start.Add(10 * l.duration)
	}
	ctx, cancel := context.WithDeadline(ctx, hardDeadline.Add(l.timeout))
	defer cancel()
	var sent atomic.Int64
	more := func() bool {
		now := time.Now()
		return now.Before(deadline) || (sent.Load() < int64(l.minRequests) && now.Before(hardDeadline))
	}
	results := make([]sample, l.concurrency)
	var wg sync.WaitGroup
	for i := range l.concurrency {
		wg.Go(func() {
			w := &results[i]
			br := bufio.NewReaderSize(nil, 16<<10)
			for ctx.Err() == nil && more() {
				if n := sent.Add(1); l.requests > 0 && n > int64(l.requests) {
					return
				}
				l.do(ctx, t, br, w)
			}
		})
	}
	wg.Wait()
	var s sample
	for _, r := range results {
		s.add(r)
	}
	s.elapsed = time.Since(start)
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return s, err
	}
	return s, nil
}

// do sends one request and reads its stream to the end.
func (l load) do(ctx context.Context, t *target, br *bufio.Reader, s *sample) {
	s.requests++
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+l.api.path, bytes.NewReader(l.body))
	if err != nil {
		s.fail("request", err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.key)
	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		s.fail("transport error", err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		s.fail(fmt.Sprintf("status %d", resp.StatusCode), string(b))
		return
	}
	br.Reset(resp.Body)
	last, first := start, true
	res := scanStream(br, l.api.sse, func(now time.Time) {
		if !l.latency {
			return
		}
		if first {
			s.ttft = append(s.ttft, now.Sub(start))
			first = false
		} else {
			s.gaps = append(s.gaps, now.Sub(last))
		}
		last = now
	})
	s.chunks += res.chunks
	switch {
	case res.err != nil:
		s.fail("read error", res.err.Error())
	case res.errorEvent:
		s.fail("error in stream", res.errorText)
	case !res.done:
		s.fail("truncated (no end marker)", fmt.Sprintf("%d of %d chunks", res.chunks, l.wantChunks))
	case l.wantChunks > 0 && res.chunks != l.wantChunks:
		s.fail("wrong chunk count", fmt.Sprintf("%d of %d chunks", res.chunks, l.wantChunks))
	}
}

// streamResult is what scanStream saw.
type streamResult struct {
	chunks     int  // events with content
	done       bool // the end marker: data: [DONE], or a "done":true line
	errorEvent bool
	errorText  string
	err        error // reading failed other than by EOF
}

var (
	markDone      = []byte("data: [DONE]")
	markNDDone    = []byte(`"done":true`)
	markEmpty     = []byte(`"content":""`)
	markSSEError  = []byte(`data: {"error"`)
	markNDJSONErr = []byte(`{"error"`)
)

// scanStream reads an SSE or NDJSON stream line by line, calling onContent
// with the arrival time of each event that carries content (a token), and
// reports how the stream ended. An unterminated last line is no event. It
// allocates nothing per line.
func scanStream(br *bufio.Reader, sse bool, onContent func(time.Time)) streamResult {
	var res streamResult
	for {
		line, err := br.ReadSlice('\n')
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				res.event(line, sse, onContent)
			}
		}
		// A line longer than the buffer was judged by its start: skip the rest.
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		if err == io.EOF {
			return res
		}
		if err != nil {
			res.err = err
			return res
		}
	}
}

func (res *streamResult) event(line []byte, sse bool, onContent func(time.Time)) {
	if sse {
		switch {
		case line[0] == ':' || !bytes.HasPrefix(line, []byte("data:")):
			return // comment (keep-alive), or an event/id field
		case bytes.Equal(line, markDone):
			res.done = true
			return
		case bytes.HasPrefix(line, markSSEError):
			res.errorEvent, res.errorText = true, truncate(string(line), 300)
			return
		}
	} else {
		if bytes.HasPrefix(line, markNDJSONErr) {
			res.errorEvent, res.errorText = true, truncate(string(line), 300)
			return
		}
		if bytes.Contains(line, markNDDone) {
			res.done = true
			return
		}
	}
	if !bytes.Contains(line, markEmpty) {
		res.chunks++
		onContent(time.Now())
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
