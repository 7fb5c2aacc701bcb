package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

const (
	deathWindow     = 10 * time.Minute // deaths older than this are forgiven
	crashLoopAfter  = 3                // deaths in the window that make a crash loop
	maxRestartDelay = 2 * time.Minute
	pullRetry       = 30 * time.Second // a failed image pull is retried this often
)

// errPullBackoff stops a pass from retrying a pull that just failed.
var errPullBackoff = errors.New("image pull failed recently; retrying later")

// restartDelay is the back-off before starting a container that has died
// n times in the window: the first restart is immediate.
func restartDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(time.Second<<(n-1), maxRestartDelay)
}

// reconcile makes one pass from actual toward desired. It returns when the
// next pass is due because of a back-off (zero: none pending).
func (e *Engine) reconcile(ctx context.Context) (time.Time, error) {
	e.mu.Lock()
	desired := append([]Spec(nil), e.desired...)
	reach := e.reach
	phases := map[string]Phase{}
	stopped := map[string]bool{}
	for name, in := range e.inst {
		phases[name] = in.phase
		stopped[name] = in.stopped
	}
	e.mu.Unlock()
	publish := reach == ReachLoopback

	if err := e.checkClaim(ctx); err != nil {
		return time.Time{}, err
	}
	own := e.owner()
	actual, err := e.docker.List(ctx, e.cfg.Namespace)
	if err != nil {
		return time.Time{}, err
	}
	wanted := map[string]bool{}
	for _, s := range desired {
		wanted[s.Name] = true
	}
	var errs []error
	byName := map[string]ctr{}
	foreign := map[string]ctr{} // another corral's: never removed, replaced or started
	for _, c := range actual {
		if c.Labels[LabelRole] == "" {
			continue
		}
		if !own.mine(c.Labels[LabelOwner]) {
			foreign[c.Name] = c
			continue
		}
		if !wanted[c.Name] {
			e.drain(ctx, c.Name)
			e.log.Info("removing container no longer desired", "container", c.Name)
			if err := e.docker.Remove(ctx, c.ID, e.cfg.StopTimeout); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		byName[c.Name] = c
	}

	// Rolling replacement keeps at most one instance unavailable because of
	// it: a healthy outdated instance waits while any other is not healthy.
	// Companions are replaced at once: there is one of each.
	unavailable := 0
	for _, s := range desired {
		if c, ok := byName[s.Name]; !isApp(s) && !stopped[s.Name] && (!ok || !c.Running || phases[s.Name] != PhaseHealthy) {
			unavailable++
		}
	}
	var next time.Time
	replaced := false
	for _, s := range desired {
		if ctx.Err() != nil {
			break
		}
		if fc, ok := foreign[s.Name]; ok {
			e.transition(s.Name, PhaseFailed, fmt.Sprintf("container %s belongs to the corral with data dir %s; this one leaves it alone", s.Name, fc.Labels[LabelDataDir]))
			continue
		}
		c, ok := byName[s.Name]
		if stopped[s.Name] {
			// Kept down; a container that came back (created by hand, or
			// left by a stop that failed half way) goes.
			if ok {
				if err := e.docker.Remove(ctx, c.ID, e.cfg.StopTimeout); err != nil {
					errs = append(errs, err)
				}
			}
			e.transition(s.Name, PhaseStopped, stoppedReason)
			continue
		}
		hash := specHash(s, publish)
		var at time.Time
		var err error
		if wait := e.waitingFor(s, phases); wait != "" && (!ok || c.Labels[LabelSpecHash] != hash) {
			// A companion starts once what it needs is healthy.
			e.transition(s.Name, PhasePending, "waiting for "+wait+" to be healthy")
			continue
		}
		switch {
		case !ok:
			err = e.create(ctx, s, hash, publish, reach)
		case isApp(s) && c.Labels[LabelSpecHash] != hash:
			err = e.replace(ctx, s, c, hash, publish, reach)
		case c.Labels[LabelSpecHash] != hash:
			// A running container whose health is not known yet (just adopted)
			// is given its verdict first; one that is not serving goes at once.
			phase := phases[s.Name]
			verdictPending := c.Running && (phase == PhasePending || phase == PhaseStarting || phase == PhaseDraining)
			healthy := c.Running && phase == PhaseHealthy
			if verdictPending || replaced || (healthy && unavailable > 0) {
				e.adopt(s, c, reach)
				e.note(s.Name, "update pending: waiting for the other instances to be healthy")
				continue
			}
			replaced = true
			if healthy {
				unavailable++
			}
			err = e.replace(ctx, s, c, hash, publish, reach)
		case !c.Running:
			at, err = e.restart(ctx, s, c)
		default:
			e.adopt(s, c, reach)
		}
		if err != nil && !errors.Is(err, errPullBackoff) {
			errs = append(errs, err)
		}
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	e.mu.Lock()
	e.publish() // endpoints may have changed without a phase change
	e.mu.Unlock()
	return next, errors.Join(errs...)
}

// waitingFor names the first of s's prerequisites that is not healthy,
// or returns "".
func (e *Engine) waitingFor(s Spec, phases map[string]Phase) string {
	for _, dep := range s.After {
		if phases[dep] != PhaseHealthy {
			return dep
		}
	}
	return ""
}

// note sets the reason without changing the phase.
func (e *Engine) note(name, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if in, ok := e.inst[name]; ok {
		in.reason = reason
	}
}

func (e *Engine) transition(name string, p Phase, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if in, ok := e.inst[name]; ok {
		e.setPhase(in, p, reason)
	}
}

// adopt takes a running container as the instance's. A new start (after a
// restart by Docker or by us) sends it back to starting until the health
// check answers.
func (e *Engine) adopt(s Spec, c ctr, reach Reach) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in, ok := e.inst[s.Name]
	if !ok {
		return
	}
	fresh := in.containerID != c.ID
	in.containerID = c.ID
	in.image = c.Image
	in.endpoint = reach.endpoint(c, portOf(s))
	switch in.phase {
	case PhaseHealthy:
		if fresh {
			e.setPhase(in, PhaseStarting, "adopted a new container; waiting for "+healthCheck(s))
		}
	case PhaseUnhealthy:
		if in.reason == "container exited" || fresh {
			e.setPhase(in, PhaseStarting, "container running again; waiting for "+healthCheck(s))
		}
	case PhaseStarting:
	default:
		e.setPhase(in, PhaseStarting, "container running; waiting for "+healthCheck(s))
	}
}

func (e *Engine) create(ctx context.Context, s Spec, hash string, publish bool, reach Reach) error {
	if err := e.ensureImage(ctx, s.Name, s.Image, true); err != nil {
		return err
	}
	e.transition(s.Name, PhaseStarting, "creating container")
	// The owner's labels are not in the hash: see owner.go.
	own := e.owner()
	labels := own.labels(map[string]string{
		LabelManaged:   "true",
		LabelNamespace: e.cfg.Namespace,
		LabelRole:      roleOf(s),
		LabelGPU:       s.GPU,
		LabelInstance:  s.Name,
		LabelSpecHash:  hash,
	})
	cs := createSpec{
		Name: s.Name, Image: s.Image, Env: s.Env, Labels: labels, Port: portOf(s),
		Network: e.cfg.NetworkName(), Volume: e.cfg.VolumeName(), Mount: modelsPath, Publish: publish,
	}
	switch {
	case isApp(s):
		cs.Volume, cs.Mount, cs.Cmd, cs.Hosts = s.Volume, s.Mount, s.Cmd, s.Hosts
		if s.Volume != "" {
			// Its data outlives the container: created once, kept by
			// recreation, upgrades and corral down without --volumes.
			vl := own.labels(map[string]string{LabelManaged: "true", LabelNamespace: e.cfg.Namespace, LabelRole: roleOf(s)})
			if err := e.docker.EnsureVolume(ctx, s.Volume, vl); err != nil {
				e.transition(s.Name, PhaseFailed, err.Error())
				return err
			}
		}
	case s.GPU != cpuGPU && !e.cfg.SimulatedGPUs:
		cs.GPU = s.GPU
	}
	id, err := e.docker.Create(ctx, cs)
	if cerrdefs.IsConflict(err) {
		err = fmt.Errorf("a container named %s exists that corral did not create in namespace %q: remove it (docker rm -f %s) or use another --namespace", s.Name, e.cfg.Namespace, s.Name)
	}
	if err != nil {
		e.transition(s.Name, PhaseFailed, err.Error())
		return err
	}
	e.log.Info("created container", "instance", s.Name, "id", shortID(id), "image", s.Image, "gpu", s.GPU)
	return e.startAndAdopt(ctx, s, id, reach, "container started; waiting for "+healthCheck(s))
}

func (e *Engine) startAndAdopt(ctx context.Context, s Spec, id string, reach Reach, reason string) error {
	e.mu.Lock()
	if in, ok := e.inst[s.Name]; ok {
		in.containerID = id
	}
	e.mu.Unlock()
	if err := e.docker.Start(ctx, id); err != nil {
		e.transition(s.Name, PhaseFailed, err.Error())
		return err
	}
	c, err := e.docker.Inspect(ctx, id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if in, ok := e.inst[s.Name]; ok {
		in.containerID = c.ID
		in.image = c.Image
		in.endpoint = reach.endpoint(c, portOf(s))
		e.setPhase(in, PhaseStarting, reason)
	}
	e.mu.Unlock()
	return nil
}

// replace swaps an outdated container for a new one: the image is pulled
// while the old one still serves, then the old one drains and goes.
func (e *Engine) replace(ctx context.Context, s Spec, old ctr, hash string, publish bool, reach Reach) error {
	e.adopt(s, old, reach)
	if err := e.ensureImage(ctx, s.Name, s.Image, !old.Running); err != nil {
		return err
	}
	e.mu.Lock()
	if in, ok := e.inst[s.Name]; ok {
		in.removing = old.ID
		e.setPhase(in, PhaseDraining, "replacing: spec changed (image "+old.Image+" → "+s.Image+")")
	}
	e.mu.Unlock()
	e.drain(ctx, s.Name)
	e.log.Info("replacing container", "instance", s.Name, "old", shortID(old.ID), "image", s.Image)
	if err := e.docker.Remove(ctx, old.ID, e.cfg.StopTimeout); err != nil {
		e.transition(s.Name, PhaseFailed, err.Error())
		return err
	}
	return e.create(ctx, s, hash, publish, reach)
}

// drain waits, up to the grace period, for the gateway's requests on an
// instance that no longer gets new ones.
func (e *Engine) drain(ctx context.Context, name string) {
	if e.cfg.DrainWait == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.DrainGrace)
	defer cancel()
	e.cfg.DrainWait(ctx, name)
}

// restart handles a container that is not running.
func (e *Engine) restart(ctx context.Context, s Spec, c ctr) (time.Time, error) {
	now := e.now()
	e.mu.Lock()
	in, ok := e.inst[s.Name]
	if !ok {
		e.mu.Unlock()
		return time.Time{}, nil
	}
	in.containerID = c.ID
	in.image = c.Image
	in.endpoint = ""
	kept := in.deaths[:0]
	for _, d := range in.deaths {
		if now.Sub(d) < deathWindow {
			kept = append(kept, d)
		}
	}
	in.deaths = kept
	if len(in.deaths) == 0 && c.Status == "exited" {
		// It died while corral was not watching.
		in.deaths = append(in.deaths, c.FinishedAt)
	}
	n := len(in.deaths)
	last := c.FinishedAt
	if n > 0 && in.deaths[n-1].After(last) {
		last = in.deaths[n-1]
	}
	why := exitReason(c)
	if !last.IsZero() {
		in.lastExit = &Exit{At: last, Reason: why}
	}
	loop := ""
	if n >= crashLoopAfter {
		loop = fmt.Sprintf("crash loop: exited %d times in %s (last: %s)", n, deathWindow, why)
	}
	switch c.Status {
	case "restarting":
		// Docker's restart policy is already on it, with its own back-off.
		if loop != "" {
			e.setPhase(in, PhaseFailed, loop+"; Docker is restarting it with back-off")
		} else {
			e.setPhase(in, PhaseUnhealthy, "restarting after "+why)
		}
		e.mu.Unlock()
		return time.Time{}, nil
	case "removing":
		e.mu.Unlock()
		return time.Time{}, nil
	case "paused":
		e.setPhase(in, PhaseUnhealthy, "container is paused: docker unpause "+c.Name)
		e.mu.Unlock()
		return time.Time{}, nil
	}
	if due := last.Add(restartDelay(n)); due.After(now) {
		wait := due.Sub(now).Round(time.Second)
		if loop != "" {
			e.setPhase(in, PhaseFailed, fmt.Sprintf("%s; next start in %s", loop, wait))
		} else {
			e.setPhase(in, PhaseUnhealthy, fmt.Sprintf("%s; restarting in %s", why, wait))
		}
		e.mu.Unlock()
		return due, nil
	}
	e.mu.Unlock()
	e.log.Info("starting stopped container", "instance", s.Name, "id", shortID(c.ID), "was", why)
	return time.Time{}, e.startAndAdopt(ctx, s, c.ID, e.reachNow(), "restarted after "+why+"; waiting for "+healthCheck(s))
}

func (e *Engine) reachNow() Reach {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reach
}

func exitReason(c ctr) string {
	switch {
	case c.OOMKilled:
		return "killed for lack of memory (OOM)"
	case c.Error != "":
		return c.Error
	case c.Status == "created":
		return "never started"
	case signalName(c.ExitCode) != "":
		return fmt.Sprintf("exit code %d (%s)", c.ExitCode, signalName(c.ExitCode))
	default:
		return fmt.Sprintf("exit code %d", c.ExitCode)
	}
}

// signalName words the signals that end containers: 128+n is the exit
// code of a process killed by signal n.
func signalName(code int) string {
	switch code - 128 {
	case 6:
		return "aborted, SIGABRT"
	case 9:
		return "killed, SIGKILL: docker kill, or the kernel out of memory"
	case 11:
		return "crashed, SIGSEGV"
	case 15:
		return "terminated, SIGTERM"
	}
	return ""
}

// failureRun counts failed tries in a row: the pulls of an image, or
// Docker's answers.
type failureRun struct {
	first, last time.Time
	n           int
}

// ensureImage pulls image when Docker lacks it. When showPhase is set the
// instance shows pulling with progress; otherwise (an old container still
// serves) only the reason changes. A failed pull is retried every
// pullRetry; a retry changes nothing shown or logged until bytes move, so
// a server without registry access shows one failure, not a pulling and
// failed pair every pullRetry (the daemon's log also holds back the same
// error said again).
func (e *Engine) ensureImage(ctx context.Context, name, image string, showPhase bool) error {
	ok, err := e.docker.HasImage(ctx, image)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	e.mu.Lock()
	failed, retry := e.pullFailed[image]
	e.mu.Unlock()
	if retry && e.now().Sub(failed.last) < pullRetry {
		return errPullBackoff // the failure is shown; a later pass retries
	}
	if retry {
		e.log.Debug("retrying image pull", "image", image, "for", name, "failures", failed.n)
	} else {
		e.log.Info("pulling image", "image", image, "for", name)
	}
	report := func(p pullProgress) {
		if retry && p.Size == 0 {
			return // nothing moves yet: the failure stays shown
		}
		msg := "pulling " + image
		if p.Size > 0 {
			msg = fmt.Sprintf("pulling %s: %d%% of %s", image, p.Done*100/p.Size, IECBytes(p.Size))
		}
		if showPhase {
			e.transition(name, PhasePulling, msg)
		} else {
			e.note(name, msg)
		}
	}
	report(pullProgress{})
	if err := e.docker.Pull(ctx, image, report); err != nil {
		// Docker's words say what failed; the reason shown also says what
		// to do, since the usual cause is a server without registry access.
		flag := "--ollama-image"
		e.mu.Lock()
		if in, ok := e.inst[name]; ok && isApp(in.spec) {
			flag = "--chat-ui-image"
		}
		e.mu.Unlock()
		err = fmt.Errorf("%w (retried every %s; without registry access, docker load the image or pick a local one with %s)", err, pullRetry, flag)
		e.log.Error("image pull failed", "image", image, "err", err)
		e.mu.Lock()
		now := e.now()
		if !retry {
			failed.first = now
		}
		failed.last = now
		failed.n++
		e.pullFailed[image] = failed
		e.mu.Unlock()
		e.transition(name, PhaseFailed, err.Error())
		return err
	}
	e.mu.Lock()
	delete(e.pullFailed, image)
	e.mu.Unlock()
	if retry {
		e.log.Info("image pulled", "image", image, "failures", failed.n, "failing_since", failed.first)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
