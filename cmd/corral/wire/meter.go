// Package wire adapts corral's engine parts to the interfaces the gateway
// declares, for corral serve and the benchmark alike.
package wire

import (
	"context"

	"corral/engine/usage"
	"corral/proxy/gateway"
)

// Meter lets the gateway reserve and settle through engine/usage
// without either package knowing the other.
type Meter struct{ M *usage.Meter }

var _ gateway.Meter = Meter{}

func (a Meter) Reserve(ctx context.Context, key, model string, maxTokens int) (gateway.Reservation, error) {
	r, err := a.M.Reserve(ctx, key, model, maxTokens)
	if err != nil {
		return nil, err
	}
	return reservation{r}, nil
}

type reservation struct{ r *usage.Reservation }

func (r reservation) Settle(u gateway.Usage) {
	r.r.Settle(usage.Record{
		Time: u.Start, Key: u.Key, User: u.User, Model: u.Model, Instance: u.Instance, Route: u.Route,
		PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		TTFT: u.TTFT, Queued: u.Queued, Duration: u.Duration, Status: u.Status, Outcome: u.Outcome,
	})
}
