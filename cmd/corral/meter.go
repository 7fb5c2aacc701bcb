package main

import (
	"context"

	"corral/engine/usage"
	"corral/proxy/gateway"
)

// meterAdapter lets the gateway reserve and settle through engine/usage
// without either package knowing the other.
type meterAdapter struct{ m *usage.Meter }

var _ gateway.Meter = meterAdapter{}

func (a meterAdapter) Reserve(ctx context.Context, key, model string, maxTokens int) (gateway.Reservation, error) {
	r, err := a.m.Reserve(ctx, key, model, maxTokens)
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
		TTFT: u.TTFT, Duration: u.Duration, Status: u.Status, Outcome: u.Outcome,
	})
}
