package models

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Presence is a model on one instance.
type Presence struct {
	Instance  string    `json:"instance"`
	GPU       string    `json:"gpu"`
	Loaded    bool      `json:"loaded"`
	SizeVRAM  int64     `json:"size_vram,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Model is one entry of the catalogue: the union across instances.
type Model struct {
	Name          string     `json:"name"`
	Size          int64      `json:"size"`
	Digest        string     `json:"digest"`
	Family        string     `json:"family,omitempty"`
	ParameterSize string     `json:"parameter_size,omitempty"`
	Quantization  string     `json:"quantization,omitempty"`
	Instances     []Presence `json:"instances"`
	Placement     *Placement `json:"placement,omitempty"`
}

// Catalogue lists every model present on any instance, by name.
func (m *Manager) Catalogue() []Model {
	t := m.routes.Routes()
	byName := map[string]*Model{}
	for _, r := range t.Routes {
		loaded := map[string]int{}
		for i, l := range r.Loaded {
			loaded[Canonical(l.Name)] = i
		}
		for _, mi := range r.Models {
			name := Canonical(mi.Name)
			e, ok := byName[name]
			if !ok {
				e = &Model{Name: name, Size: mi.Size, Digest: mi.Digest, Family: mi.Details.Family,
					ParameterSize: mi.Details.ParameterSize, Quantization: mi.Details.QuantizationLevel}
				byName[name] = e
			}
			pr := Presence{Instance: r.Name, GPU: r.GPU}
			if i, ok := loaded[name]; ok {
				pr.Loaded, pr.SizeVRAM, pr.ExpiresAt = true, r.Loaded[i].SizeVRAM, r.Loaded[i].ExpiresAt
			}
			e.Instances = append(e.Instances, pr)
		}
	}
	m.mu.Lock()
	for name, p := range m.places {
		if e, ok := byName[name]; ok {
			pc := p
			e.Placement = &pc
		}
	}
	m.mu.Unlock()
	out := make([]Model, 0, len(byName))
	for _, e := range byName {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *Manager) names() []string {
	var out []string
	for _, e := range m.Catalogue() {
		out = append(out, e.Name)
	}
	return out
}

// notPulled says a model is absent, and what is there.
func (m *Manager) notPulled(model string) error {
	list := "none"
	if n := m.names(); len(n) > 0 {
		list = strings.Join(n, ", ")
	}
	return errorf(ErrNotFound, "model %s is not on any instance: corral pull %s first (models: %s)", model, model, list)
}

// Delete removes a model from the shared volume through one instance,
// after unloading it everywhere. A placed model is refused.
func (m *Manager) Delete(ctx context.Context, model string) error {
	model = Canonical(model)
	m.mu.Lock()
	p, placed := m.places[model]
	if !placed {
		m.deleting[model] = true
		defer func() {
			m.mu.Lock()
			delete(m.deleting, model)
			m.mu.Unlock()
		}()
	}
	m.mu.Unlock()
	if placed {
		return errorf(ErrConflict, "model %s is placed (%s): remove the placement first with corral place %s --clear", model, p.String(), model)
	}
	t := m.routes.Routes()
	ups := healthy(t)
	if len(ups) == 0 {
		return noInstance(t)
	}
	found := false
	for _, r := range ups {
		found = found || has(r, model)
	}
	if !found {
		return m.notPulled(model)
	}
	var errs []error
	for _, r := range ups {
		if loadedOn(r, model) {
			if err := m.load(ctx, r.URL, model, 0); err != nil {
				errs = append(errs, fmt.Errorf("unload %s on %s: %w", model, r.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := m.callDone(ctx, http.MethodDelete, ups[0].URL+"/api/delete", map[string]any{"model": model}); err != nil {
		return fmt.Errorf("delete %s through %s: %w", model, ups[0].Name, err)
	}
	if _, err := m.waitListed(ctx, model, false); err != nil {
		return err
	}
	m.settle(ctx, model, false)
	m.log.Info("model deleted", "model", model, "via", ups[0].Name)
	return nil
}
