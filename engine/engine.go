// Package engine owns corral's desired state and makes Docker match it: one
// Ollama container per GPU (or CPU instances), a private network, a shared
// models volume, health checks, restarts with back-off, rolling
// replacement, and the phase of every instance.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"corral/engine/store"
)

// Config is how the engine runs; desired instances come separately.
type Config struct {
	Namespace      string
	DockerHost     string // empty: DOCKER_HOST or the default socket
	Reach          Reach
	HealthInterval time.Duration // how often each instance is probed
	RelistInterval time.Duration // full re-list, so a missed event heals
	StartTimeout   time.Duration // starting longer than this is unhealthy
	StopTimeout    time.Duration // grace for a replaced container to stop
	// DrainWait, when set, returns once no request is in flight on the
	// instance (or ctx ends); a draining instance's streams finish first.
	DrainWait  func(ctx context.Context, instance string)
	DrainGrace time.Duration // longest wait for DrainWait
	// SimulatedGPUs: the GPUs are corral serve --simulate-gpus's, which
	// exist only in NVML mocks; instances get no device.
	SimulatedGPUs bool
	// Store, when set, keeps operator changes such as weights, and is the
	// owner of the namespace (owner.go): its ID labels what the engine
	// makes, and another store's containers are left alone. Without one
	// nothing is claimed or labelled with an owner.
	Store *store.Store
	// TakeOver claims the namespace from the corral that owns it (serve
	// --take-over); only the first claim of a run takes over.
	TakeOver bool
	Logger   *slog.Logger
}

func (c *Config) defaults() {
	if c.Namespace == "" {
		c.Namespace = "corral"
	}
	if c.Reach == "" {
		c.Reach = ReachAuto
	}
	if c.HealthInterval <= 0 {
		c.HealthInterval = 3 * time.Second
	}
	if c.RelistInterval <= 0 {
		c.RelistInterval = 15 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 3 * time.Minute
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.DrainGrace <= 0 {
		c.DrainGrace = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// NetworkName and VolumeName derive from the namespace, so two corrals (or
// two test runs) on one Docker engine never touch each other's objects.
func (c Config) NetworkName() string { return c.Namespace }
func (c Config) VolumeName() string  { return c.Namespace + "-models" }

// Engine reconciles desired instances with Docker.
type Engine struct {
	cfg         Config
	docker      docker
	log         *slog.Logger
	probeClient *http.Client
	appClient   *http.Client // follows no redirects: any answer is alive
	now         func() time.Time

	kick    chan struct{} // asks the reconcile loop for a pass
	refresh chan struct{} // asks the health loop for a probe now

	// checks counts the health loop's rounds, for Recheck.
	checks checkCount

	mu        sync.Mutex
	desired   []Spec
	inst      map[string]*instance
	dockerErr string // empty when Docker answers
	// dockerFails counts the tries that failed since Docker last answered.
	dockerFails failureRun
	reach       Reach  // resolved once Docker answers
	netGW       string // the host's address on the network, once known
	routes      atomic.Pointer[RouteTable]
	events      []Event // recent phase changes, oldest first

	// pullFailed holds the failed pulls of an image since it last
	// pulled, for the retry back-off and the log.
	pullFailed map[string]failureRun

	own      owner // this store and those it took over from, once claimed
	takeOver bool  // the next claim takes the namespace over
}

// instance is the engine's runtime knowledge of one desired instance.
type instance struct {
	spec        Spec
	containerID string
	image       string
	endpoint    string
	phase       Phase
	reason      string
	since       time.Time
	healthFails int
	deaths      []time.Time // recent exits we did not cause, for back-off
	removing    string      // container ID we are removing on purpose
	stopped     bool        // the owner keeps it down (Stop)
	lastExit    *Exit       // the latest exit corral did not ask for
	// restartedUntil: a death before then is a restart we asked for.
	restartedUntil time.Time

	models   []ModelInfo // from /api/tags
	loaded   []LoadedModel
	polledAt time.Time
}

// New makes an engine for the desired instances; it talks to Docker only
// once Run is called.
func New(cfg Config, desired []Spec) (*Engine, error) {
	cfg.defaults()
	weights, err := loadWeights(cfg.Store)
	if err != nil {
		return nil, err
	}
	stopped, err := loadStopped(cfg.Store)
	if err != nil {
		return nil, err
	}
	applyWeights(desired, weights)
	d, err := newDocker(cfg.DockerHost, cfg.NetworkName())
	if err != nil {
		return nil, err
	}
	e := newEngine(cfg, d, desired)
	e.keepStopped(stopped)
	return e, nil
}

// applyWeights sets the operator's stored weights on the specs.
func applyWeights(specs []Spec, weights map[string]int) {
	for i := range specs {
		if w, ok := weights[specs[i].Name]; ok {
			specs[i].Weight = w
		}
	}
}

func newEngine(cfg Config, d docker, desired []Spec) *Engine {
	cfg.defaults()
	e := &Engine{
		cfg:         cfg,
		docker:      d,
		log:         cfg.Logger,
		probeClient: &http.Client{Timeout: 2 * time.Second},
		appClient: &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		now:     time.Now,
		kick:    make(chan struct{}, 1),
		refresh: make(chan struct{}, 1),
		checks:  checkCount{end: make(chan struct{})},
		inst:    map[string]*instance{},

		pullFailed: map[string]failureRun{},
		takeOver:   cfg.TakeOver,
	}
	e.routes.Store(&RouteTable{})
	e.setDesired(desired)
	return e
}

// Close releases the Docker client. Containers keep running.
func (e *Engine) Close() error {
	e.probeClient.CloseIdleConnections()
	e.appClient.CloseIdleConnections()
	return e.docker.Close()
}

func (e *Engine) setDesired(desired []Spec) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.desired = append([]Spec(nil), desired...)
	sort.SliceStable(e.desired, func(i, j int) bool {
		if a, b := isApp(e.desired[i]), isApp(e.desired[j]); a != b {
			return b
		}
		return e.desired[i].Index < e.desired[j].Index
	})
	keep := map[string]bool{}
	for _, s := range e.desired {
		keep[s.Name] = true
		if in, ok := e.inst[s.Name]; ok {
			in.spec = s
			continue
		}
		e.inst[s.Name] = &instance{spec: s, phase: PhasePending, reason: "waiting for Docker", since: e.now()}
	}
	for name := range e.inst {
		if !keep[name] {
			delete(e.inst, name)
		}
	}
	e.publish()
}

// InternalHost is how companion containers reach corral: dial is the host
// they connect to, listen the address corral listens on for them. With
// corral on the host that is the host's address on the private network,
// which only the host and that network's containers reach; with corral in
// a container on the network, its own name. ok is false until Docker has
// answered, and where containers cannot reach corral (reach loopback,
// such as Docker Desktop).
func (e *Engine) InternalHost() (listen, dial string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.reach == ReachName:
		self, err := selfContainerID()
		return "0.0.0.0", self, err == nil
	case e.reach == ReachIP && e.netGW != "":
		return e.netGW, e.netGW, true
	}
	return "", "", false
}

// SetApps replaces the desired companion containers (the chat UI and
// what it needs); the Ollama instances stay as they are. Containers no
// longer desired are removed on the next pass; their volumes stay.
func (e *Engine) SetApps(apps []Spec) {
	e.replaceDesired(isApp, apps)
}

// SetInstances replaces the desired Ollama instances (after a change of
// image, keep-alive or parallel slots); the companions stay. Changed
// instances are replaced one at a time, each once the others are
// healthy, so serving never stops; the operator's weights stay.
func (e *Engine) SetInstances(specs []Spec) error {
	weights, err := loadWeights(e.cfg.Store)
	if err != nil {
		return err
	}
	specs = append([]Spec(nil), specs...)
	applyWeights(specs, weights)
	e.replaceDesired(func(s Spec) bool { return !isApp(s) }, specs)
	return nil
}

// replaceDesired swaps the desired specs that match for those given.
func (e *Engine) replaceDesired(match func(Spec) bool, with []Spec) {
	e.mu.Lock()
	desired := make([]Spec, 0, len(e.desired)+len(with))
	for _, s := range e.desired {
		if !match(s) {
			desired = append(desired, s)
		}
	}
	e.mu.Unlock()
	e.setDesired(append(desired, with...))
	e.poke()
}

// Status is a copy of the current state, safe to hand out.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{Namespace: e.cfg.Namespace, Docker: "ok"}
	if e.dockerErr != "" {
		st.Docker = e.dockerErr
	}
	for _, s := range e.desired {
		in := e.inst[s.Name]
		image := in.image
		if image == "" {
			image = s.Image
		}
		if isApp(s) {
			st.Apps = append(st.Apps, AppStatus{
				Name: s.Name, Role: s.Role, Phase: in.phase, Reason: in.reason, ContainerID: in.containerID,
				Image: image, Endpoint: in.endpoint, Volume: s.Volume, Since: in.since,
			})
			continue
		}
		st.Instances = append(st.Instances, InstanceStatus{
			Name: s.Name, GPU: s.GPU, GPUIndex: s.GPUIndex,
			Phase: in.phase, Reason: in.reason, ContainerID: in.containerID,
			Image: image, Endpoint: in.endpoint, Since: in.since, Weight: max(s.Weight, 1),
			LastExit: in.lastExit,
		})
	}
	return st
}

// setPhase records a transition; the caller holds e.mu.
func (e *Engine) setPhase(in *instance, p Phase, reason string) {
	if in.phase == p && in.reason == reason {
		return
	}
	if in.phase != p {
		e.recordEvent(Event{At: e.now(), Instance: in.spec.Name, From: in.phase, To: p, Reason: reason})
		in.since = e.now()
		e.log.Info("instance phase", "instance", in.spec.Name, "from", in.phase, "to", p, "reason", reason)
	}
	in.phase, in.reason = p, reason
	e.publish()
}

func (e *Engine) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx is done. Docker being unreachable, at start or
// later, is not fatal: it is logged once, shown in Status, and retried.
// Another corral owning the namespace, or taking it over, is: Run returns
// *OwnerError. Containers are left running when Run returns.
func (e *Engine) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		connected, err := e.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if oe := (*OwnerError)(nil); errors.As(err, &oe) {
			e.log.Error("namespace owned by another corral: not managing it", "namespace", e.cfg.Namespace, "owner_data_dir", oe.DataDir)
			return err
		}
		if connected {
			backoff = time.Second
		}
		e.dockerDown(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// dockerDown records a failed try: logged the first time and when the
// error changes, not at every retry.
func (e *Engine) dockerDown(err error) {
	msg := fmt.Sprintf("docker unreachable: %v", err)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	switch {
	case e.dockerErr == "":
		e.dockerFails = failureRun{first: now}
		e.log.Error("docker unreachable; serving what is known and retrying", "err", err)
	case e.dockerErr != msg:
		e.log.Error("docker still unreachable, now with another error; retrying", "err", err, "failures", e.dockerFails.n, "since", e.dockerFails.first)
	}
	e.dockerFails.n++
	e.dockerFails.last = now
	e.dockerErr = msg
}

func (e *Engine) dockerUp(reach Reach) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dockerErr != "" {
		e.log.Info("docker reachable again", "failures", e.dockerFails.n, "since", e.dockerFails.first)
	}
	e.dockerErr = ""
	e.reach = reach
}

// session is one connected stretch: it returns when Docker stops
// answering (connected tells whether it ever answered) or ctx ends.
func (e *Engine) session(ctx context.Context) (connected bool, err error) {
	if err := e.docker.Ping(ctx); err != nil {
		return false, err
	}
	if err := e.claimNamespace(ctx); err != nil {
		return true, err
	}
	labels := e.owner().labels(map[string]string{LabelManaged: "true", LabelNamespace: e.cfg.Namespace})
	if err := e.docker.EnsureNetwork(ctx, e.cfg.NetworkName(), labels); err != nil {
		return true, err
	}
	if err := e.docker.EnsureVolume(ctx, e.cfg.VolumeName(), labels); err != nil {
		return true, err
	}
	reach := e.cfg.Reach.resolve(ctx, e.docker, e.cfg.NetworkName(), e.log)
	gw, err := e.docker.NetworkGateway(ctx, e.cfg.NetworkName())
	if err != nil {
		e.log.Warn("companions cannot reach corral", "err", err)
	}
	e.mu.Lock()
	e.netGW = gw
	e.mu.Unlock()
	e.dockerUp(reach)
	e.log.Info("docker connected", "namespace", e.cfg.Namespace, "reach", reach)

	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	evs, evErr := e.docker.Events(sctx, e.cfg.Namespace)
	wg.Go(func() { e.watchEvents(sctx, evs) })
	wg.Go(func() { e.healthLoop(sctx) })

	relist := time.NewTicker(e.cfg.RelistInterval)
	defer relist.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		next, err := e.reconcile(sctx)
		if oe := (*OwnerError)(nil); errors.As(err, &oe) {
			return true, err
		}
		if err != nil && sctx.Err() == nil {
			if perr := e.docker.Ping(sctx); perr != nil {
				return true, perr
			}
			e.log.Warn("reconcile", "err", err)
		}
		wake.Reset(time.Hour)
		if !next.IsZero() {
			wake.Reset(max(time.Until(next), 10*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-evErr:
			return true, fmt.Errorf("docker event stream: %w", err)
		case <-e.kick:
		case <-relist.C:
		case <-wake.C:
		}
	}
}

// watchEvents turns Docker events into reconcile passes and records deaths
// we did not cause, for crash-loop back-off.
func (e *Engine) watchEvents(ctx context.Context, evs <-chan event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-evs:
			if !ok {
				return
			}
			if ev.Action == "die" {
				e.recordDeath(ev)
			}
			switch ev.Action {
			case "die", "start", "destroy", "create", "stop", "kill", "oom", "pause", "unpause", "rename":
				e.poke()
			}
		}
	}
}

func (e *Engine) recordDeath(ev event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in, ok := e.inst[ev.Name]
	if !ok || in.removing == ev.ID || e.now().Before(in.restartedUntil) {
		return
	}
	in.deaths = append(in.deaths, e.now())
	if in.phase == PhaseHealthy || in.phase == PhaseStarting {
		e.setPhase(in, PhaseUnhealthy, "container exited")
	}
}
