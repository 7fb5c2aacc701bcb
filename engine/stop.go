package engine

import (
	"context"
	"errors"
	"slices"

	"corral/engine/store"
)

// stoppedKey stores the names the owner stopped; they stay down across
// restarts of corral until started again.
const stoppedKey = "stopped"

const stoppedReason = "stopped by the owner; start it to bring it back"

func loadStopped(st *store.Store) ([]string, error) {
	var names []string
	if st == nil {
		return nil, nil
	}
	if err := st.Setting(stoppedKey, &names); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return names, nil
}

// keepStopped marks the instances stopped before this start of corral.
func (e *Engine) keepStopped(names []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, name := range names {
		if in, ok := e.inst[name]; ok {
			in.stopped = true
			in.phase, in.reason = PhaseStopped, stoppedReason
		}
	}
}

// setStopped records the change in the store first, so what the page
// shows is what a restart of corral will do.
func (e *Engine) setStopped(name string, stopped bool) error {
	if err := e.known(name); err != nil {
		return err
	}
	names, err := loadStopped(e.cfg.Store)
	if err != nil {
		return err
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == name })
	if stopped {
		names = append(names, name)
	}
	if e.cfg.Store != nil {
		if err := e.cfg.Store.PutSettings(map[string]any{stoppedKey: names}); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	in, ok := e.inst[name]
	if !ok { // replaced by new settings meanwhile
		return e.noSuch(name)
	}
	in.stopped = stopped
	return nil
}

// known says whether name is a desired instance or companion.
func (e *Engine) known(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.inst[name]; !ok {
		return e.noSuch(name)
	}
	return nil
}

// Stop takes an instance or companion down and keeps it down: its
// requests finish first (up to the drain grace period), then its
// container is removed; the models and data volumes stay.
func (e *Engine) Stop(ctx context.Context, name string) error {
	if err := e.setStopped(name, true); err != nil {
		return err
	}
	e.mu.Lock()
	in, ok := e.inst[name]
	if !ok {
		defer e.mu.Unlock()
		return e.noSuch(name)
	}
	id := in.containerID
	in.removing = id
	e.setPhase(in, PhaseDraining, "stopping on request")
	e.mu.Unlock()
	if id != "" {
		e.drain(ctx, name)
		if err := e.docker.Remove(ctx, id, e.cfg.StopTimeout); err != nil {
			e.transition(name, PhaseFailed, err.Error())
			return err
		}
	}
	e.mu.Lock()
	in.containerID, in.endpoint = "", ""
	e.setPhase(in, PhaseStopped, stoppedReason)
	e.mu.Unlock()
	e.poke()
	return nil
}

// Start brings a stopped instance or companion back: the next pass
// creates its container.
func (e *Engine) Start(name string) error {
	if err := e.setStopped(name, false); err != nil {
		return err
	}
	e.transition(name, PhasePending, "starting on request")
	e.poke()
	return nil
}
