package engine

import (
	"errors"
	"fmt"

	"corral/engine/store"
)

// weightsKey stores operators' per-instance weights by instance name; they
// survive restarts and re-planning.
const weightsKey = "weights"

// MaxWeight bounds a weight; 1 is the default share.
const MaxWeight = 100

func loadWeights(st *store.Store) (map[string]int, error) {
	w := map[string]int{}
	if st == nil {
		return w, nil
	}
	if err := st.Setting(weightsKey, &w); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return w, nil
}

// SetWeight changes an instance's share of gateway traffic (1 to
// MaxWeight; twice the weight takes twice the requests in flight).
func (e *Engine) SetWeight(name string, weight int) error {
	if weight < 1 || weight > MaxWeight {
		return fmt.Errorf("weight %d: use 1 to %d", weight, MaxWeight)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	found := false
	for i := range e.desired {
		if e.desired[i].Name == name {
			e.desired[i].Weight = weight
			e.inst[name].spec.Weight = weight
			found = true
		}
	}
	if !found {
		var names []string
		for _, s := range e.desired {
			names = append(names, s.Name)
		}
		return fmt.Errorf("no instance %q (instances: %v)", name, names)
	}
	if e.cfg.Store != nil {
		w, err := loadWeights(e.cfg.Store)
		if err != nil {
			return err
		}
		w[name] = weight
		if err := e.cfg.Store.PutSettings(map[string]any{weightsKey: w}); err != nil {
			return err
		}
	}
	e.publish()
	return nil
}
