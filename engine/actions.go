package engine

import (
	"context"
	"fmt"
	"time"
)

// containerOf is the container of the instance or companion called name.
func (e *Engine) containerOf(name string) (*instance, string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in, ok := e.inst[name]
	if !ok {
		return nil, "", e.noSuch(name)
	}
	if in.containerID == "" {
		return nil, "", fmt.Errorf("%s has no container yet (%s: %s)", name, in.phase, in.reason)
	}
	return in, in.containerID, nil
}

// Restart restarts an instance's or companion's container in place, with
// the stop grace period; it is starting again until its health check
// answers. The restart is not counted as a crash.
func (e *Engine) Restart(ctx context.Context, name string) error {
	in, id, err := e.containerOf(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	// Its die event, which may come after Restart returns, is ours.
	in.restartedUntil = e.now().Add(e.cfg.StopTimeout + 10*time.Second)
	e.setPhase(in, PhaseStarting, "restarting on request")
	e.mu.Unlock()
	err = e.docker.Restart(ctx, id, e.cfg.StopTimeout)
	e.mu.Lock()
	if err != nil {
		e.setPhase(in, PhaseUnhealthy, err.Error())
	} else {
		e.setPhase(in, PhaseStarting, "restarted on request; waiting for "+healthCheck(in.spec))
	}
	e.mu.Unlock()
	e.poke()
	return err
}

// Recreate replaces an instance's or companion's container with a new one
// from its spec; volumes (models, the chat UI's data) stay. An instance's
// requests finish first, up to the drain grace period.
func (e *Engine) Recreate(ctx context.Context, name string) error {
	in, id, err := e.containerOf(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	in.removing = id
	e.setPhase(in, PhaseDraining, "recreating on request")
	e.mu.Unlock()
	e.drain(ctx, name)
	if err := e.docker.Remove(ctx, id, e.cfg.StopTimeout); err != nil {
		e.transition(name, PhaseFailed, err.Error())
		return err
	}
	e.transition(name, PhasePending, "recreating on request")
	e.poke()
	return nil
}

// noSuch says name is unknown and which names there are; the caller holds
// e.mu.
func (e *Engine) noSuch(name string) error {
	var names []string
	for _, s := range e.desired {
		names = append(names, s.Name)
	}
	return fmt.Errorf("no instance or chat UI container %q (there are: %v)", name, names)
}
