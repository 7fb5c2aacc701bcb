package wire

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"corral/engine/store"
	"corral/proxy/gateway"
)

// corsSetting is where the browser origins allowed to call the gateway
// are stored.
const corsSetting = "cors_origins"

// CORS is the admin-set list of browser origins that may call the
// gateway, swappable at run time: the gateway reads it with one pointer
// load per request that carries an Origin.
type CORS struct {
	st  *store.Store
	cur atomic.Pointer[gateway.Origins]
}

var _ gateway.CORS = (*CORS)(nil)

// NewCORS loads the stored list (none: CORS off).
func NewCORS(st *store.Store) (*CORS, error) {
	c := &CORS{st: st}
	var list []string
	if err := st.Setting(corsSetting, &list); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	o, err := gateway.ParseOrigins(list)
	if err != nil {
		return nil, fmt.Errorf("stored CORS origins: %w", err)
	}
	c.cur.Store(o)
	return c, nil
}

// Origins lists the allowed origins, normalised: ["*"] for any, empty
// when CORS is off.
func (c *CORS) Origins() []string { return c.cur.Load().List() }

// SetOrigins replaces the list and stores it (empty turns CORS off); a
// bad list changes nothing.
func (c *CORS) SetOrigins(_ context.Context, origins []string) error {
	o, err := gateway.ParseOrigins(origins)
	if err != nil {
		return err
	}
	if err := c.st.PutSettings(map[string]any{corsSetting: o.List()}); err != nil {
		return err
	}
	c.cur.Store(o)
	return nil
}

// AllowOrigin implements gateway.CORS.
func (c *CORS) AllowOrigin(origin string) (ok, anyOrigin bool) {
	return c.cur.Load().AllowOrigin(origin)
}
