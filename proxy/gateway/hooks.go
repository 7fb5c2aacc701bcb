package gateway

import (
	"context"
	"time"
)

// Meter admits a request against its key's quotas before it is forwarded
// and accounts what it really used afterwards; nil turns metering off. An
// error from Reserve with a RetryAfter() time.Duration method is a 429;
// any other refuses the request with 503.
type Meter interface {
	Reserve(ctx context.Context, key, model string, maxTokens int) (Reservation, error)
}

// Reservation is settled exactly once, with what the request used.
type Reservation interface {
	Settle(Usage)
}

// Usage is one finished request, with the upstream's own token counts.
type Usage struct {
	Start            time.Time
	Key              string // the key's name
	User             string // the end user, when a chat UI says who
	Model            string
	Instance         string
	Route            string
	PromptTokens     int
	CompletionTokens int
	// CountsKnown: the upstream reported the counts. Otherwise, for a
	// stream that ended early, they are corral's estimate: a token per
	// frame generated, and the prompt's text at four characters a token.
	CountsKnown bool
	TTFT        time.Duration
	Queued      time.Duration // waiting in corral's queue for an instance, within TTFT and Duration
	Duration    time.Duration
	Status      int
	Outcome     string
	Attempts    int
}

// Filter screens prompts and generated text against the admin's list;
// nil turns it off.
type Filter interface {
	Prompt(route string, body []byte) (phrase string, hit bool)
	NewStream() StreamFilter
}

// StreamFilter follows one response; a phrase split across frames still
// matches.
type StreamFilter interface {
	Feed(sse bool, frame []byte) (phrase string, hit bool)
}

// Observer sees every request, for metrics; nil turns it off. Each
// attempt on an instance starts with Attempt and ends with Retry (it
// failed and another instance is tried) or with the request's Observe.
type Observer interface {
	Attempt(route, model, instance string)
	Retry(instance string)
	Observe(Usage)
	FilterHit(where string)
}
