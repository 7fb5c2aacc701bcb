package engine

import "time"

// eventsKept bounds the history: enough for a day of a flapping instance
// on the admin page, small enough to hand out on every request.
const eventsKept = 200

// Event is one phase change of an instance or companion, for the admin
// page's "recent events".
type Event struct {
	At       time.Time `json:"at"`
	Instance string    `json:"instance"`
	From     Phase     `json:"from"`
	To       Phase     `json:"to"`
	Reason   string    `json:"reason"`
}

// recordEvent keeps a phase change; the caller holds e.mu.
func (e *Engine) recordEvent(ev Event) {
	if len(e.events) == eventsKept {
		copy(e.events, e.events[1:])
		e.events = e.events[:eventsKept-1]
	}
	e.events = append(e.events, ev)
}

// Events returns the recent phase changes, newest first; name filters to
// one instance or companion ("" for all).
func (e *Engine) Events(name string) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Event, 0, len(e.events))
	for i := len(e.events) - 1; i >= 0; i-- {
		if name == "" || e.events[i].Instance == name {
			out = append(out, e.events[i])
		}
	}
	return out
}
