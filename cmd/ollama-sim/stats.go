package main

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// stats are the counters GET /_sim/stats reports, so that tests can tell
// which instance served what.
type stats struct {
	mu              sync.Mutex
	since           time.Time
	requests        map[string]int64 // by path (route pattern)
	statuses        map[string]int64 // by status code
	models          map[string]int64 // inference requests by model
	inFlight        int64            // inference requests now
	cancelled       int64            // inference requests whose client left before their end
	inFlightByModel map[string]int64
	tokens          int64
	promptTokens    int64
	loads           int64
	unloads         int64
	evictions       int64
	pulls           int64
	pullErrors      int64
	creates         int64
	faults          map[string]int64
}

// statsSnapshot is the JSON of GET /_sim/stats.
type statsSnapshot struct {
	Instance        string           `json:"instance"`
	Version         string           `json:"version"`
	Since           time.Time        `json:"since"`
	Requests        map[string]int64 `json:"requests"`
	Statuses        map[string]int64 `json:"statuses"`
	Models          map[string]int64 `json:"models"`
	InFlight        int64            `json:"in_flight"`
	Cancelled       int64            `json:"cancelled"`
	InFlightByModel map[string]int64 `json:"in_flight_by_model"`
	TokensGenerated int64            `json:"tokens_generated"`
	PromptTokens    int64            `json:"prompt_tokens"`
	Loads           int64            `json:"loads"`
	Unloads         int64            `json:"unloads"`
	Evictions       int64            `json:"evictions"`
	Pulls           int64            `json:"pulls"`
	PullErrors      int64            `json:"pull_errors"`
	Creates         int64            `json:"creates"`
	Faults          map[string]int64 `json:"faults"`
	Loaded          []string         `json:"loaded"`
}

func newStats(now time.Time) *stats {
	st := &stats{inFlightByModel: map[string]int64{}}
	st.reset(now)
	return st
}

// reset zeroes the counters; in-flight counts describe the present and stay.
func (st *stats) reset(now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.since = now
	st.requests = map[string]int64{}
	st.statuses = map[string]int64{}
	st.models = map[string]int64{}
	st.faults = map[string]int64{}
	st.tokens, st.promptTokens, st.cancelled = 0, 0, 0
	st.loads, st.unloads, st.evictions = 0, 0, 0
	st.pulls, st.pullErrors, st.creates = 0, 0, 0
}

func (st *stats) snapshot() statsSnapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	return statsSnapshot{
		Since:           st.since,
		Requests:        maps.Clone(st.requests),
		Statuses:        maps.Clone(st.statuses),
		Models:          maps.Clone(st.models),
		InFlight:        st.inFlight,
		Cancelled:       st.cancelled,
		InFlightByModel: maps.Clone(st.inFlightByModel),
		TokensGenerated: st.tokens,
		PromptTokens:    st.promptTokens,
		Loads:           st.loads,
		Unloads:         st.unloads,
		Evictions:       st.evictions,
		Pulls:           st.pulls,
		PullErrors:      st.pullErrors,
		Creates:         st.creates,
		Faults:          maps.Clone(st.faults),
	}
}

func (st *stats) add(f func()) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f()
}

// request counts a finished request; status 0 means it was aborted
// (hang, cut, client gone before an answer).
func (st *stats) request(path string, status int) {
	key := "aborted"
	if status != 0 {
		key = strconv.Itoa(status)
	}
	st.add(func() {
		st.requests[path]++
		st.statuses[key]++
	})
}

func (st *stats) addTokens(n int)       { st.add(func() { st.tokens += int64(n) }) }
func (st *stats) addPromptTokens(n int) { st.add(func() { st.promptTokens += int64(n) }) }
func (st *stats) fault(kind string)     { st.add(func() { st.faults[kind]++ }) }
func (st *stats) loaded()               { st.add(func() { st.loads++ }) }
func (st *stats) unloaded(evicted bool) {
	st.add(func() {
		st.unloads++
		if evicted {
			st.evictions++
		}
	})
}
func (st *stats) pulled(ok bool) {
	st.add(func() {
		if ok {
			st.pulls++
		} else {
			st.pullErrors++
		}
	})
}
func (st *stats) created() { st.add(func() { st.creates++ }) }

func (st *stats) inferenceStarted() { st.add(func() { st.inFlight++ }) }

// inferenceEnded undoes inferenceStarted and servedModel, and counts a
// request whose client left (or was cut off) before its end.
func (st *stats) inferenceEnded(r *http.Request) {
	model := infoOf(r.Context()).model
	gone := r.Context().Err() != nil
	st.add(func() {
		st.inFlight--
		if gone {
			st.cancelled++
		}
		if model != "" {
			st.inFlightByModel[model]--
			if st.inFlightByModel[model] <= 0 {
				delete(st.inFlightByModel, model)
			}
		}
	})
}

// servedModel records which model an inference request resolved to.
func (st *stats) servedModel(r *http.Request, model string) {
	info := infoOf(r.Context())
	if info.model != "" {
		return
	}
	info.model = model
	st.add(func() {
		st.models[model]++
		st.inFlightByModel[model]++
	})
}

// reqInfo is what the logging middleware learns from a handler.
type reqInfo struct {
	model string
}

type reqInfoKey struct{}

func withInfo(ctx context.Context) (context.Context, *reqInfo) {
	info := &reqInfo{}
	return context.WithValue(ctx, reqInfoKey{}, info), info
}

func infoOf(ctx context.Context) *reqInfo {
	if info, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return info
	}
	return &reqInfo{}
}
