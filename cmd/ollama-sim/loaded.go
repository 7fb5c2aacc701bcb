package main

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// The scheduler keeps the loaded-model bookkeeping of Ollama's server:
//
//   - the first request for a model loads it (load_delay); concurrent
//     requests for it wait for that one load;
//   - a model stays loaded while requests use it and for its keep-alive
//     afterwards (the request's keep_alive, else the last one given, else
//     OLLAMA_KEEP_ALIVE); keep_alive 0 unloads it when its last request
//     ends. Expiry is checked lazily on every scheduler call, so no
//     goroutine runs for it;
//   - models occupy their size in a VRAM budget (vram_bytes); loading one
//     that does not fit evicts idle models, least recently used first, and
//     waits for busy ones to finish. A model larger than the whole budget
//     loads alone, partly offloaded: size_vram is the budget;
//   - each loaded model runs OLLAMA_NUM_PARALLEL generations at once; the
//     rest queue. More than OLLAMA_MAX_QUEUE requests waiting for a model
//     answer 503.

// errMaxQueue is Ollama's ErrMaxQueue.
var errMaxQueue = errors.New("server busy, please try again.  maximum pending requests exceeded")

// errShuttingDown ends loads when the simulator stops.
var errShuttingDown = errors.New("server shutting down")

// runner is one loaded (or loading) model.
type runner struct {
	key       string // fully qualified name
	model     *localModel
	size      int64
	vram      int64
	numCtx    int
	ready     chan struct{} // closed when loading ends
	loaded    bool          // loading ended without error
	err       error         // why loading failed
	refs      int           // requests using it
	session   time.Duration // keep-alive after the last request
	expiresAt time.Time
	lastUsed  time.Time
	slots     chan struct{} // one per running generation
}

type scheduler struct {
	ctx         context.Context // the server's lifetime
	clock       clock
	sim         *sim
	stats       *stats
	spawn       func(func()) bool // runs a load in the background; false once closed
	numParallel int
	maxQueue    int
	keepAlive   time.Duration
	contextLen  int

	mu      sync.Mutex
	runners map[string]*runner
	changed chan struct{} // closed and replaced whenever room may have appeared
	waiting int
}

func newScheduler(ctx context.Context, cfg config, clk clock, sm *sim, st *stats, spawn func(func()) bool) *scheduler {
	return &scheduler{
		ctx:         ctx,
		clock:       clk,
		sim:         sm,
		stats:       st,
		spawn:       spawn,
		numParallel: cfg.NumParallel,
		maxQueue:    cfg.MaxQueue,
		keepAlive:   cfg.KeepAlive,
		contextLen:  cfg.ContextLength,
		runners:     map[string]*runner{},
		changed:     make(chan struct{}),
	}
}

// acquire returns the loaded runner for m, loading it first if needed, and
// counts the caller as a user until release. keepAlive, when set, becomes
// the runner's keep-alive; numCtx (0 = default) sizes a new load.
func (s *scheduler) acquire(ctx context.Context, m *localModel, keepAlive *time.Duration, numCtx int) (*runner, error) {
	s.mu.Lock()
	if s.waiting >= s.maxQueue {
		s.mu.Unlock()
		return nil, errMaxQueue
	}
	s.waiting++
	r, err := s.reserveLocked(ctx, m, keepAlive, numCtx)
	s.waiting--
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		s.release(r)
		return nil, ctx.Err()
	}
	if r.err != nil {
		s.release(r)
		return nil, r.err
	}
	return r, nil
}

// reserveLocked finds or places the runner; it may wait for room, dropping
// the lock meanwhile.
func (s *scheduler) reserveLocked(ctx context.Context, m *localModel, keepAlive *time.Duration, numCtx int) (*runner, error) {
	key := m.name.String()
	for {
		now := s.clock.Now()
		s.expireLocked(now)

		if r, ok := s.runners[key]; ok {
			if r.model.digest == m.digest {
				r.refs++
				if keepAlive != nil {
					r.session = *keepAlive
				}
				r.lastUsed = now
				r.expiresAt = now.Add(r.session)
				return r, nil
			}
			// The model changed on disk (pulled or created again):
			// reload it once its current users are done.
			if r.refs == 0 && r.loaded {
				s.unloadLocked(r, false)
				continue
			}
		} else if vram, ok := s.placeLocked(m.size); ok {
			r := &runner{
				key:      key,
				model:    m,
				size:     m.size,
				vram:     vram,
				numCtx:   s.contextFor(m, numCtx),
				ready:    make(chan struct{}),
				refs:     1,
				session:  s.keepAlive,
				lastUsed: now,
				slots:    make(chan struct{}, s.numParallel),
			}
			if keepAlive != nil {
				r.session = *keepAlive
			}
			r.expiresAt = now.Add(r.session)
			s.runners[key] = r
			s.startLoad(r)
			return r, nil
		}

		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			return nil, ctx.Err()
		case <-s.ctx.Done():
			s.mu.Lock()
			return nil, errShuttingDown
		}
		s.mu.Lock()
	}
}

// placeLocked makes room for size bytes, evicting idle runners least
// recently used first, and returns the VRAM the new runner gets.
func (s *scheduler) placeLocked(size int64) (int64, bool) {
	budget := s.sim.get().VRAMBytes
	for {
		var used int64
		for _, r := range s.runners {
			used += r.vram
		}
		if size <= budget-used {
			return size, true
		}
		idle := s.idleLocked()
		if len(idle) == 0 {
			break
		}
		s.unloadLocked(idle[0], true)
	}
	if len(s.runners) == 0 {
		// Bigger than the whole budget: load partly offloaded.
		return min(size, budget), true
	}
	return 0, false
}

// idleLocked lists loaded runners nobody uses, least recently used first.
func (s *scheduler) idleLocked() []*runner {
	var idle []*runner
	for _, r := range s.runners {
		if r.refs == 0 && r.loaded {
			idle = append(idle, r)
		}
	}
	slices.SortFunc(idle, func(a, b *runner) int {
		return cmp.Or(a.lastUsed.Compare(b.lastUsed), cmp.Compare(a.key, b.key))
	})
	return idle
}

// contextFor is the context length a new load gets: the request's num_ctx,
// else OLLAMA_CONTEXT_LENGTH, else Ollama's VRAM-based default; never more
// than the model was trained for.
func (s *scheduler) contextFor(m *localModel, numCtx int) int {
	n := numCtx
	if n <= 0 {
		n = s.contextLen
	}
	if n <= 0 {
		switch vram := s.sim.get().VRAMBytes; {
		case vram >= 47<<30:
			n = 262144
		case vram >= 23<<30:
			n = 32768
		default:
			n = 4096
		}
	}
	if trained := m.trainedContext(); trained > 0 {
		n = min(n, trained)
	}
	return n
}

// startLoad simulates loading r in the background; it ends early when the
// server stops. The caller holds s.mu.
func (s *scheduler) startLoad(r *runner) {
	delay := s.sim.get().LoadDelay.std()
	finish := func(err error) {
		s.mu.Lock()
		if err != nil {
			r.err = errShuttingDown
			if s.runners[r.key] == r {
				delete(s.runners, r.key)
			}
		} else {
			r.loaded = true
			s.stats.loaded()
		}
		close(r.ready)
		s.broadcastLocked()
		s.mu.Unlock()
	}
	if !s.spawn(func() { finish(s.clock.Sleep(s.ctx, delay)) }) {
		// Shutting down. The caller holds s.mu: finish without it.
		r.err = errShuttingDown
		delete(s.runners, r.key)
		close(r.ready)
	}
}

// release ends one use of r; the last one starts the keep-alive, or
// unloads at once when it is zero.
func (s *scheduler) release(r *runner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.refs--
	now := s.clock.Now()
	r.lastUsed = now
	if r.refs == 0 {
		if r.session <= 0 && r.loaded {
			s.unloadLocked(r, false)
		} else {
			r.expiresAt = now.Add(r.session)
		}
	}
	s.broadcastLocked()
}

// slot waits for one of the runner's OLLAMA_NUM_PARALLEL generation slots.
func (r *runner) slot(ctx context.Context) (func(), error) {
	select {
	case r.slots <- struct{}{}:
		return func() { <-r.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// unload is keep_alive 0 with an empty prompt: the model goes as soon as
// its last request ends.
func (s *scheduler) unload(m *localModel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[m.name.String()]
	if !ok {
		return
	}
	r.session = 0
	r.expiresAt = s.clock.Now()
	if r.refs <= 0 && r.loaded {
		s.unloadLocked(r, false)
	}
	s.broadcastLocked()
}

// expireLocked unloads idle runners whose keep-alive has passed.
func (s *scheduler) expireLocked(now time.Time) {
	for _, r := range s.runners {
		if r.refs == 0 && r.loaded && !now.Before(r.expiresAt) {
			s.unloadLocked(r, false)
		}
	}
}

func (s *scheduler) unloadLocked(r *runner, evicted bool) {
	if s.runners[r.key] != r {
		return
	}
	delete(s.runners, r.key)
	s.stats.unloaded(evicted)
	s.broadcastLocked()
}

func (s *scheduler) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// loadedModel is one row of /api/ps.
type loadedModel struct {
	model     *localModel
	size      int64
	vram      int64
	numCtx    int
	expiresAt time.Time
}

// list returns the loaded models, longest remaining keep-alive first.
func (s *scheduler) list() []loadedModel {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.expireLocked(now)
	out := make([]loadedModel, 0, len(s.runners))
	for _, r := range s.runners {
		out = append(out, loadedModel{model: r.model, size: r.size, vram: r.vram, numCtx: r.numCtx, expiresAt: r.expiresAt})
	}
	slices.SortStableFunc(out, func(a, b loadedModel) int {
		return cmp.Or(cmp.Compare(b.expiresAt.Unix(), a.expiresAt.Unix()), cmp.Compare(a.model.name.String(), b.model.name.String()))
	})
	return out
}
