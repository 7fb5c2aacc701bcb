package main

import (
	"context"
	"os"
	"sync"

	serve "corral/cmd/corral/wire"
	"corral/engine/keys"
	"corral/engine/store"
	"corral/engine/usage"
	"corral/proxy/gateway"
	"corral/proxy/metrics"
)

// fullStack sets cfg up the way corral serve does: a store in a temp dir,
// the API key manager (the bench key created in it), usage metering with
// a quota far above what the run uses, and Prometheus metrics. The content
// filter stays off, as it is by default. stop ends the background loops and
// removes the store.
func fullStack(ctx context.Context, cfg *gateway.Config, key string) (gateway.Authorizer, func(), error) {
	dir, err := os.MkdirTemp("", "corral-bench-store-")
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	fail := func(err error) (gateway.Authorizer, func(), error) {
		st.Close()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	km, err := keys.New(st)
	if err != nil {
		return fail(err)
	}
	// The bench key is fixed, so create it as the admin would and map it.
	secret, _, err := km.Create(ctx, keys.CreateOptions{Name: "bench"})
	if err != nil {
		return fail(err)
	}
	if _, err := km.SetLimits(ctx, "bench", keys.Limits{TokensPerDay: 1 << 40, RequestsPerMinute: 1 << 30}); err != nil {
		return fail(err)
	}
	meter, err := usage.New(st, km)
	if err != nil {
		return fail(err)
	}
	cfg.Meter = serve.Meter{M: meter}
	cfg.Observer = serve.Observer{M: metrics.New()}

	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { km.Run(runCtx) })
	wg.Go(func() { meter.Run(runCtx) })
	stop := func() {
		cancel()
		wg.Wait()
		st.Close()
		os.RemoveAll(dir)
	}
	return benchKeyAuth{km: km, bench: key, secret: secret}, stop, nil
}

// benchKeyAuth swaps the bench's fixed key for the one the manager made,
// so the real Authorize (hashing, cache lookup) runs on every request.
type benchKeyAuth struct {
	km     *keys.Manager
	bench  string
	secret string
}

func (a benchKeyAuth) Authorize(ctx context.Context, key, model string) (string, error) {
	if key == a.bench {
		key = a.secret
	}
	return a.km.Authorize(ctx, key, model)
}
