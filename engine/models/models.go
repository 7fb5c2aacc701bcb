// Package models owns the models on corral's instances: the catalogue
// across instances, pulls made once into the shared volume, deletes, and
// placement rules that keep chosen models loaded on chosen instances.
package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"corral/engine"
	"corral/engine/store"
)

// Routes is what the manager needs of the engine: the instances, and a
// way to have them re-polled after a change.
type Routes interface {
	Routes() *engine.RouteTable
	Refresh()
}

// Config tunes the manager; zero values take defaults.
type Config struct {
	Store *store.Store
	// GPUFree reports free and total memory of a GPU by UUID, for the fit
	// check; nil or !ok skips it (CPU instances).
	GPUFree  func(uuid string) (free, total uint64, ok bool)
	Interval time.Duration // placement check period
	SpoolDir string        // where uploads wait while they are hashed
	Logger   *slog.Logger
}

// Manager is the single owner of model operations.
type Manager struct {
	cfg    Config
	routes Routes
	log    *slog.Logger
	http   *http.Client

	ctx    context.Context // Run's; pulls outlive the request that started them
	ready  chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	pulls  map[string]*Pull
	places map[string]Placement
	// targets is where each placed model should be loaded now.
	targets  atomic.Pointer[Targets]
	loading  map[string]bool // "model|instance" preloads in progress
	nudge    chan struct{}
	now      func() time.Time
	deleting map[string]bool
}

// Targets maps canonical model names to the instances placement keeps them
// on; Version changes with every change.
type Targets struct {
	Version uint64
	ByModel map[string][]string
}

// New loads the placement rules; Run does the work.
func New(cfg Config, routes Routes) (*Manager, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{
		cfg: cfg, routes: routes, log: cfg.Logger,
		// Pulls and cold loads can take many minutes: no overall timeout,
		// each call is bounded by its context.
		http:     &http.Client{},
		ready:    make(chan struct{}),
		pulls:    map[string]*Pull{},
		places:   map[string]Placement{},
		loading:  map[string]bool{},
		deleting: map[string]bool{},
		nudge:    make(chan struct{}, 1),
		now:      time.Now,
	}
	m.targets.Store(&Targets{ByModel: map[string][]string{}})
	if err := m.loadPlacements(); err != nil {
		return nil, err
	}
	return m, nil
}

// Run keeps placements applied until ctx ends, and owns every pull.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	close(m.ready)
	defer m.wg.Wait()
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.applyPlacements(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-m.nudge:
		}
	}
}

func (m *Manager) poke() {
	select {
	case m.nudge <- struct{}{}:
	default:
	}
}

// runCtx is Run's context, once Run has started.
func (m *Manager) runCtx() (context.Context, error) {
	select {
	case <-m.ready:
		return m.ctx, nil
	default:
		return nil, errors.New("model manager is not running yet")
	}
}

// Canonical names a model the way Ollama lists it: a missing tag is
// ":latest", the default registry and namespace are dropped. The gateway
// has the same rule (a test in cmd/corral keeps them equal).
func Canonical(name string) string {
	name = strings.TrimSpace(name)
	name = strings.TrimPrefix(name, "registry.ollama.ai/")
	name = strings.TrimPrefix(name, "library/")
	slash := strings.LastIndexByte(name, '/')
	if strings.LastIndexByte(name, ':') <= slash && !strings.Contains(name, "@") && name != "" {
		name += ":latest"
	}
	return name
}

// healthy lists the routes that can take an operation now.
func healthy(t *engine.RouteTable) []engine.Route {
	var out []engine.Route
	for _, r := range t.Routes {
		if r.Healthy && !r.Draining {
			out = append(out, r)
		}
	}
	return out
}

// Kinds of failure, for errors.Is; the messages say what to do.
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")
	ErrUnavailable = errors.New("unavailable")
)

// kindError keeps a one-line message and a kind for errors.Is.
type kindError struct {
	kind error
	msg  string
}

func (e kindError) Error() string        { return e.msg }
func (e kindError) Is(target error) bool { return target == e.kind }

func errorf(kind error, format string, args ...any) error {
	return kindError{kind, fmt.Sprintf(format, args...)}
}

func noInstance(t *engine.RouteTable) error {
	if len(t.Routes) == 0 {
		return errorf(ErrUnavailable, "no Ollama instance is running: see corral status")
	}
	var why []string
	for _, r := range t.Routes {
		why = append(why, fmt.Sprintf("%s is %s", r.Name, r.Status))
	}
	return errorf(ErrUnavailable, "no healthy instance: %s", strings.Join(why, "; "))
}

func has(r engine.Route, model string) bool {
	for _, mi := range r.Models {
		if Canonical(mi.Name) == model {
			return true
		}
	}
	return false
}

func loadedOn(r engine.Route, model string) bool {
	for _, l := range r.Loaded {
		if Canonical(l.Name) == model {
			return true
		}
	}
	return false
}
