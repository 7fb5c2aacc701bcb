package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"corral/engine"
	"corral/engine/store"
)

// placementsKey is the setting holding every placement rule.
const placementsKey = "placements"

// DefaultKeepAlive keeps a placed model loaded until told otherwise.
const DefaultKeepAlive = "-1"

// Placement keeps a model loaded: on Replicas instances of corral's
// choosing, or pinned to GPUs by index (instance numbers on a CPU host).
type Placement struct {
	Model     string `json:"model"`
	Replicas  int    `json:"replicas,omitempty"`
	GPUs      []int  `json:"gpus,omitempty"`
	KeepAlive string `json:"keep_alive,omitempty"` // as Ollama takes it; default -1 (forever)
}

// String says where the model is kept warm, as the CLI, the pages and
// the errors put it.
func (p Placement) String() string {
	s := fmt.Sprintf("warm on %d instances", p.Replicas)
	if p.Replicas == 1 {
		s = "warm on 1 instance"
	}
	if len(p.GPUs) > 0 {
		g := make([]string, len(p.GPUs))
		for i, n := range p.GPUs {
			g[i] = strconv.Itoa(n)
		}
		s = "pinned to GPUs " + strings.Join(g, ", ")
	}
	if p.KeepAlive != "" {
		s += ", keep-alive " + p.KeepAlive
	}
	return s
}

func (p Placement) keepAlive() any {
	ka := p.KeepAlive
	if ka == "" {
		ka = DefaultKeepAlive
	}
	// Ollama takes a number as seconds and a string as a duration.
	if n, err := strconv.Atoi(ka); err == nil {
		return n
	}
	return ka
}

func (m *Manager) loadPlacements() error {
	if m.cfg.Store == nil {
		return nil
	}
	var list []Placement
	if err := m.cfg.Store.Setting(placementsKey, &list); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	for _, p := range list {
		m.places[p.Model] = p
	}
	return nil
}

// savePlacements writes the rules; the caller holds m.mu.
func (m *Manager) savePlacements() error {
	if m.cfg.Store == nil {
		return nil
	}
	list := make([]Placement, 0, len(m.places))
	for _, p := range m.places {
		list = append(list, p)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Model < list[j].Model })
	return m.cfg.Store.PutSettings(map[string]any{placementsKey: list})
}

// Placements lists the rules by model name.
func (m *Manager) Placements() []Placement {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Placement, 0, len(m.places))
	for _, p := range m.places {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

// Targets is where placed models should be loaded now, for the gateway.
func (m *Manager) Targets() *Targets { return m.targets.Load() }

// instanceNumber is what --gpus numbers mean for a route: the GPU index,
// or the instance's own number on a CPU host.
func instanceNumber(r engine.Route) int {
	if r.GPUIndex >= 0 {
		return r.GPUIndex
	}
	i := strings.LastIndexByte(r.Name, '-')
	n, err := strconv.Atoi(r.Name[i+1:])
	if err != nil {
		return -1
	}
	return n
}

// Place sets the placement of a model after checking that it exists, that
// the instances exist and that it fits; nothing changes on error.
func (m *Manager) Place(ctx context.Context, p Placement) error {
	p.Model = Canonical(p.Model)
	switch {
	case p.Model == "":
		return errors.New("model name is empty")
	case p.Replicas > 0 && len(p.GPUs) > 0:
		return errors.New("give either --replicas or --gpus, not both")
	case p.Replicas <= 0 && len(p.GPUs) == 0:
		return errors.New("give --replicas N (1 or more) or --gpus 0,2")
	}
	if p.KeepAlive != "" {
		if _, err := strconv.Atoi(p.KeepAlive); err != nil {
			if _, err := time.ParseDuration(p.KeepAlive); err != nil {
				return fmt.Errorf("--keep-alive %q: use a duration such as 30m, a number of seconds, or -1 for forever", p.KeepAlive)
			}
		}
	}
	t := m.routes.Routes()
	var size int64
	for _, e := range m.Catalogue() {
		if e.Name == p.Model {
			size = e.Size
		}
	}
	if size == 0 && !slices.Contains(m.names(), p.Model) {
		return m.notPulled(p.Model)
	}
	if p.Replicas > len(t.Routes) {
		return fmt.Errorf("--replicas %d: there are only %d instances", p.Replicas, len(t.Routes))
	}
	byNumber := map[int]engine.Route{}
	for _, r := range t.Routes {
		byNumber[instanceNumber(r)] = r
	}
	seen := map[int]bool{}
	var fitErrs []string
	fits := 0
	for _, g := range p.GPUs {
		r, ok := byNumber[g]
		if !ok {
			var have []int
			for n := range byNumber {
				have = append(have, n)
			}
			sort.Ints(have)
			return fmt.Errorf("--gpus %d: no instance on GPU %d (instances run on %v)", g, g, have)
		}
		if seen[g] {
			return fmt.Errorf("--gpus: GPU %d is listed twice", g)
		}
		seen[g] = true
		if err := m.fit(r, p.Model, size); err != nil {
			fitErrs = append(fitErrs, err.Error())
		}
	}
	if p.Replicas > 0 {
		for _, r := range t.Routes {
			if err := m.fit(r, p.Model, size); err != nil {
				fitErrs = append(fitErrs, err.Error())
			} else {
				fits++
			}
		}
		if fits >= p.Replicas {
			fitErrs = nil
		}
	}
	if len(fitErrs) > 0 {
		return fmt.Errorf("%s does not fit: %s", p.Model, strings.Join(fitErrs, "; "))
	}
	m.mu.Lock()
	if m.deleting[p.Model] {
		m.mu.Unlock()
		return errorf(ErrConflict, "model %s is being deleted", p.Model)
	}
	old, had := m.places[p.Model]
	m.places[p.Model] = p
	if err := m.savePlacements(); err != nil {
		if had {
			m.places[p.Model] = old
		} else {
			delete(m.places, p.Model)
		}
		m.mu.Unlock()
		return err
	}
	m.mu.Unlock()
	m.log.Info("model placed", "model", p.Model, "placement", p.String())
	m.poke()
	return nil
}

// fit checks a model against the free memory of an instance's GPU. A model
// already loaded there fits by definition.
func (m *Manager) fit(r engine.Route, model string, size int64) error {
	if m.cfg.GPUFree == nil || r.GPUIndex < 0 || loadedOn(r, model) {
		return nil
	}
	free, _, ok := m.cfg.GPUFree(r.GPU)
	if !ok || uint64(size) <= free {
		return nil
	}
	return fmt.Errorf("needs %s, GPU %d has %s free", engine.IECBytes(size), r.GPUIndex, engine.IECBytes(int64(free)))
}

// Unplace removes a model's placement; it stays loaded until its
// keep-alive runs out.
func (m *Manager) Unplace(model string) error {
	model = Canonical(model)
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.places[model]
	if !ok {
		return errorf(ErrNotFound, "model %s has no placement", model)
	}
	delete(m.places, model)
	if err := m.savePlacements(); err != nil {
		m.places[model] = p
		return err
	}
	m.poke()
	return nil
}

// applyPlacements chooses the target instances of every placed model and
// loads it there, unloading it elsewhere so it sits exactly where placed.
// Loads run in the background: a cold load can take minutes.
func (m *Manager) applyPlacements(ctx context.Context) {
	t := m.routes.Routes()
	up := healthy(t)
	m.mu.Lock()
	places := make([]Placement, 0, len(m.places))
	for _, p := range m.places {
		places = append(places, p)
	}
	m.mu.Unlock()
	prev := m.targets.Load()
	next := &Targets{Version: prev.Version, ByModel: map[string][]string{}}
	for _, p := range places {
		targets := chooseTargets(p, up, prev.ByModel[p.Model])
		next.ByModel[p.Model] = targets
		for _, r := range up {
			want := slices.Contains(targets, r.Name)
			switch {
			case want && !loadedOn(r, p.Model) && has(r, p.Model):
				m.loadAsync(ctx, r, p.Model, p.keepAlive())
			case !want && loadedOn(r, p.Model):
				m.loadAsync(ctx, r, p.Model, 0)
			}
		}
	}
	if !sameTargets(prev.ByModel, next.ByModel) {
		next.Version++
		m.targets.Store(next)
	}
}

// chooseTargets: pinned GPUs, or Replicas instances preferring where the
// model is loaded now, then the previous choice, then by name, so the
// choice is stable and a healed instance does not cause a reshuffle.
func chooseTargets(p Placement, up []engine.Route, prev []string) []string {
	var out []string
	if len(p.GPUs) > 0 {
		for _, r := range up {
			if slices.Contains(p.GPUs, instanceNumber(r)) {
				out = append(out, r.Name)
			}
		}
		return out
	}
	rank := func(r engine.Route) int {
		switch {
		case loadedOn(r, p.Model):
			return 0
		case slices.Contains(prev, r.Name):
			return 1
		}
		return 2
	}
	cands := slices.Clone(up)
	sort.SliceStable(cands, func(i, j int) bool {
		if a, b := rank(cands[i]), rank(cands[j]); a != b {
			return a < b
		}
		return cands[i].Name < cands[j].Name
	})
	for _, r := range cands {
		if len(out) == p.Replicas {
			break
		}
		if has(r, p.Model) {
			out = append(out, r.Name)
		}
	}
	sort.Strings(out)
	return out
}

func sameTargets(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// loadAsync loads (or, keepAlive 0, unloads) a model on an instance in the
// background, once at a time per model and instance.
func (m *Manager) loadAsync(ctx context.Context, r engine.Route, model string, keepAlive any) {
	key := model + "|" + r.Name
	m.mu.Lock()
	if m.loading[key] {
		m.mu.Unlock()
		return
	}
	m.loading[key] = true
	m.mu.Unlock()
	m.wg.Go(func() {
		defer func() {
			m.mu.Lock()
			delete(m.loading, key)
			m.mu.Unlock()
		}()
		verb := "preload"
		if keepAlive == 0 {
			verb = "unload"
		}
		if err := m.load(ctx, r.URL, model, keepAlive); err != nil {
			if ctx.Err() == nil {
				m.log.Warn("placement "+verb+" failed", "model", model, "instance", r.Name, "err", err)
			}
			return
		}
		m.log.Info("placement "+verb, "model", model, "instance", r.Name)
		m.routes.Refresh()
	})
}
