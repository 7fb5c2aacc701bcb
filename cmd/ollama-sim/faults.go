package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Faults apply to inference requests: /api/chat, /api/generate,
// /api/embed, /api/embeddings, /v1/chat/completions, /v1/completions and
// /v1/embeddings.
//
//   - fail_count N: the next N inference requests answer fail_status
//     (default 500) with the error body of their API; the count goes down
//     as they are used (GET /_sim/config shows what is left).
//   - fail_rate p: otherwise, each inference request fails with
//     probability p, drawn from a PCG generator seeded with seed.
//   - hang: inference requests never answer, not even headers, until the
//     client goes away or the simulator shuts down.
//   - cut_after_tokens N: a generation that reaches N tokens drops its
//     connection right after flushing the N-th token: no final chunk, no
//     [DONE]; a non-streaming one gets no response at all.
//   - exit_after_requests N: the process exits with status 1 shortly
//     (about 10ms) after the N-th following inference request completed;
//     other streams in flight break mid-stream.
//   - exit_after_tokens N: the process exits with status 1 right after the
//     N-th following generated token was flushed, mid-stream.
//   - POST /_sim/exit: exit with status 1 right after answering.

// sim holds the runtime knobs and the state the faults consume.
type sim struct {
	mu  sync.Mutex
	cfg simConfig
	rng *rand.Rand
}

func newSim(cfg simConfig) *sim {
	return &sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed))}
}

// get returns a snapshot of the knobs.
func (s *sim) get() simConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// update applies a partial JSON update: only the fields present change.
// Unknown fields and invalid values are rejected and change nothing.
func (s *sim) update(patch []byte) (simConfig, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(patch, &keys); err != nil {
		return simConfig{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cfg
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&next); err != nil {
		return simConfig{}, err
	}
	if err := next.Validate(); err != nil {
		return simConfig{}, err
	}
	if _, ok := keys["seed"]; ok {
		s.rng = rand.New(rand.NewPCG(next.Seed, next.Seed))
	}
	s.cfg = next
	return next, nil
}

// fault is what an inference request must do before its handler runs.
type fault struct {
	hang   bool
	status int // non-zero: fail with this status
	msg    string
}

// next decides the fault for one inference request.
func (s *sim) next() fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.cfg
	if c.Hang {
		return fault{hang: true}
	}
	fail := false
	switch {
	case c.FailCount > 0:
		c.FailCount--
		fail = true
	case c.FailRate > 0:
		fail = s.rng.Float64() < c.FailRate
	}
	if !fail {
		return fault{}
	}
	status := c.FailStatus
	if status == 0 {
		status = http.StatusInternalServerError
	}
	msg := c.FailMessage
	if msg == "" {
		msg = failMessage(status)
	}
	return fault{status: status, msg: msg}
}

// requestDone counts a completed inference request against
// exit_after_requests and reports whether the process must exit now.
func (s *sim) requestDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.ExitAfterRequests == 0 {
		return false
	}
	s.cfg.ExitAfterRequests--
	return s.cfg.ExitAfterRequests == 0
}

// tokenGenerated counts a token against exit_after_tokens and reports
// whether the process must exit now.
func (s *sim) tokenGenerated() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.ExitAfterTokens == 0 {
		return false
	}
	s.cfg.ExitAfterTokens--
	return s.cfg.ExitAfterTokens == 0
}

// failMessage is the text real Ollama answers with for a status.
func failMessage(status int) string {
	switch status {
	case http.StatusServiceUnavailable:
		return errMaxQueue.Error()
	case http.StatusInternalServerError:
		return "llama runner process has terminated: exit status 2"
	case 499:
		return "request canceled"
	}
	if t := http.StatusText(status); t != "" {
		return strings.ToLower(t)
	}
	return fmt.Sprintf("status %d", status)
}

// inference wraps an inference handler with the faults, the in-flight
// count and exit_after_requests.
func (s *server) inference(api apiFamily, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.stats.inferenceStarted()
		defer s.stats.inferenceEnded(r)

		f := s.sim.next()
		switch {
		case f.hang:
			s.stats.fault("hang")
			select {
			case <-r.Context().Done():
			case <-s.ctx.Done():
			}
			panic(http.ErrAbortHandler)
		case f.status != 0:
			s.stats.fault("fail")
			writeAPIError(w, api, &apiError{status: f.status, msg: f.msg})
		default:
			h(w, r)
		}
		if s.sim.requestDone() {
			s.exitSoon()
		}
	}
}

// exitSoon exits with status 1 after the current response has had time to
// reach the client.
func (s *server) exitSoon() {
	s.background(func() {
		if s.clock.Sleep(s.ctx, 10*time.Millisecond) == nil {
			s.exit(1)
		}
	})
}
