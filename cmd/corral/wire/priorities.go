package wire

import (
	"time"

	"corral/engine/keys"
	"corral/proxy/gateway"
)

// Priorities gives the gateway each key's place in its queue from the
// key's limits (set with corral keys limit). It reads memory only: the
// gateway asks on every request. An unknown key, or a setting left at 0,
// gets the gateway's default.
type Priorities struct{ K *keys.Manager }

var _ gateway.Priorities = Priorities{}

func (p Priorities) Priority(name string) gateway.Priority {
	l, ok := p.K.Limits(name)
	if !ok {
		return gateway.Priority{}
	}
	return gateway.Priority{
		Weight:   float64(l.Weight),
		Batch:    l.Batch,
		MaxWait:  time.Duration(l.MaxWaitSeconds) * time.Second,
		MaxQueue: int(l.MaxQueue),
	}
}
