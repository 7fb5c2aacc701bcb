package models

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"corral/engine"
)

// Event is one step of a pull, as Ollama reports it plus corral's own
// steps. The last event of a pull has Done set, and Error when it failed.
type Event struct {
	Model     string   `json:"model"`
	Status    string   `json:"status"`
	Digest    string   `json:"digest,omitempty"`
	Total     int64    `json:"total,omitempty"`
	Completed int64    `json:"completed,omitempty"`
	Instance  string   `json:"instance,omitempty"`
	Instances []string `json:"instances,omitempty"` // on success: every instance that lists it
	Error     string   `json:"error,omitempty"`
	Done      bool     `json:"done,omitempty"`
}

// Pull is one pull in progress or finished. Every watcher sees every
// event, in order, from the start.
type Pull struct {
	Model  string
	cancel context.CancelFunc

	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on each new event
}

func (p *Pull) add(ev Event) {
	ev.Model = p.Model
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.events); n > 0 && p.events[n-1].Done {
		return
	}
	p.events = append(p.events, ev)
	close(p.changed)
	p.changed = make(chan struct{})
}

// since returns the events from i on, or a channel closed at the next one.
func (p *Pull) since(i int) ([]Event, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.events[i:], p.changed
}

// Watch streams the pull's events until it is done or ctx ends; the
// channel closes after the last event.
func (p *Pull) Watch(ctx context.Context) <-chan Event {
	out := make(chan Event)
	go func() {
		defer close(out)
		for i := 0; ; {
			evs, changed := p.since(i)
			for _, ev := range evs {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
				if ev.Done {
					return
				}
			}
			i += len(evs)
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Pull starts pulling model through one healthy instance, or joins the
// pull of it already under way.
func (m *Manager) Pull(model string) (*Pull, error) {
	model = Canonical(model)
	if model == "" {
		return nil, errors.New("model name is empty")
	}
	base, err := m.runCtx()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pulls[model]; ok {
		return p, nil
	}
	t := m.routes.Routes()
	ups := healthy(t)
	if len(ups) == 0 {
		return nil, noInstance(t)
	}
	ctx, cancel := context.WithCancel(base)
	p := &Pull{Model: model, cancel: cancel, changed: make(chan struct{})}
	m.pulls[model] = p
	m.wg.Go(func() {
		defer cancel()
		m.runPull(ctx, p, ups)
		m.mu.Lock()
		delete(m.pulls, model)
		m.mu.Unlock()
	})
	return p, nil
}

// CancelPull stops a pull under way.
func (m *Manager) CancelPull(model string) error {
	model = Canonical(model)
	m.mu.Lock()
	p, ok := m.pulls[model]
	m.mu.Unlock()
	if !ok {
		return errorf(ErrNotFound, "no pull of %s is under way", model)
	}
	p.cancel()
	return nil
}

func (m *Manager) runPull(ctx context.Context, p *Pull, ups []engine.Route) {
	via := ups[0]
	p.add(Event{Status: "pulling through " + via.Name, Instance: via.Name})
	m.log.Info("pulling model", "model", p.Model, "via", via.Name)
	fail := func(msg string) {
		m.log.Warn("model pull failed", "model", p.Model, "err", msg)
		p.add(Event{Status: "error", Error: msg, Done: true})
	}
	resp, err := m.call(ctx, http.MethodPost, via.URL+"/api/pull", map[string]any{"model": p.Model, "stream": true})
	if err != nil {
		if ctx.Err() != nil {
			fail("pull cancelled")
			return
		}
		fail(err.Error())
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	succeeded := false
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue
		}
		if ev.Error != "" {
			fail(ev.Error) // Ollama's own message, e.g. an unknown model
			return
		}
		ev.Instance = via.Name
		ev.Done = false
		if ev.Status == "success" {
			succeeded = true
			ev.Status = "downloaded"
		}
		p.add(ev)
	}
	switch {
	case ctx.Err() != nil:
		fail("pull cancelled")
		return
	case sc.Err() != nil:
		fail(fmt.Sprintf("pull through %s broke off: %v", via.Name, sc.Err()))
		return
	case !succeeded:
		fail(fmt.Sprintf("pull through %s ended without success", via.Name))
		return
	}
	p.add(Event{Status: "verifying on every instance"})
	seen, err := m.waitListed(ctx, p.Model, true)
	if err != nil {
		fail(err.Error())
		return
	}
	m.settle(ctx, p.Model, true)
	m.log.Info("model pulled", "model", p.Model, "instances", seen)
	p.add(Event{Status: "success", Instances: seen, Done: true})
}

// settle has the engine re-read every instance and waits until its routes
// agree that the model is (or is not) there, so the gateway routes it the
// moment a pull, import or delete reports success.
func (m *Manager) settle(ctx context.Context, model string, present bool) {
	m.routes.Refresh()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		agree := true
		for _, r := range healthy(m.routes.Routes()) {
			agree = agree && has(r, model) == present
		}
		if agree {
			return
		}
		select {
		case <-ctx.Done():
			m.log.Warn("routes did not catch up with a model change", "model", model, "present", present)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitListed polls every healthy instance's /api/tags until each lists
// the model (present) or none does (!present). The files are shared, so
// this is quick; an instance that disagrees points at a volume problem.
func (m *Manager) waitListed(ctx context.Context, model string, present bool) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var agree, disagree []string
		for _, r := range healthy(m.routes.Routes()) {
			tags, err := m.tags(ctx, r.URL)
			if err == nil && tags[model] == present {
				agree = append(agree, r.Name)
			} else {
				disagree = append(disagree, r.Name)
			}
		}
		if len(disagree) == 0 {
			return agree, nil
		}
		select {
		case <-ctx.Done():
			state := "does not list"
			if !present {
				state = "still lists"
			}
			return agree, fmt.Errorf("%s %s %s after 30s: do all instances mount the same models volume?", strings.Join(disagree, ", "), state, model)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
