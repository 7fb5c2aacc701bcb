package gateway

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream is one Ollama instance as the gateway needs to know it.
type Upstream struct {
	Name     string
	URL      *url.URL
	Healthy  bool
	Draining bool
	// Status says why it is (not) healthy, such as "unhealthy: GET
	// /api/version: connect: connection refused". Error messages show it
	// to clients: it must not hold the addresses corral reaches the
	// instance at.
	Status   string
	Weight   int // relative capacity; 0 counts as 1
	Parallel int // requests one loaded model serves at once
	// Models and Loaded hold canonical model names (see CanonicalModel).
	Models map[string]bool
	Loaded map[string]bool
	// Listed are the entries of the instance's /api/tags as it sent them,
	// read with Models: the gateway's model lists are made of these, so
	// that they show what routing sees. A model of Models without an
	// entry is listed by its name alone.
	Listed []Listed
	// Placed holds the models placement keeps on this instance: those go
	// to their placed instances only, while any of them can serve.
	Placed     map[string]bool
	PolledAt   time.Time // when Models and Loaded were read
	FreeMemory uint64    // bytes free on its GPU; 0 when unknown
	// Since is when the engine last changed the upstream's health: a
	// healthy one has been so since then. Zero when unknown.
	Since time.Time
}

// Listed is one entry of an instance's /api/tags.
type Listed struct {
	Name       string // as the instance names it
	ModifiedAt time.Time
	Entry      json.RawMessage // the whole entry, as sent
}

// Snapshot is an immutable view of every upstream. The owner replaces it
// whole; the gateway reads it without locks.
type Snapshot struct {
	Version   uint64
	Upstreams []Upstream
	// Waiting are instances that cannot take requests yet (no address:
	// pulling their image, failed to start): only Name and Status are
	// set, for the 503 that says why nothing serves.
	Waiting []Upstream
}

// Upstreams supplies the current snapshot; the engine satisfies it.
type Upstreams interface {
	Snapshot() *Snapshot
}

// CanonicalModel names a model the way Ollama lists it: a missing tag is
// ":latest", the default registry and namespace are dropped.
func CanonicalModel(name string) string {
	name = strings.TrimSpace(name)
	name = strings.TrimPrefix(name, "registry.ollama.ai/")
	name = strings.TrimPrefix(name, "library/")
	slash := strings.LastIndexByte(name, '/')
	if strings.LastIndexByte(name, ':') <= slash && !strings.Contains(name, "@") && name != "" {
		name += ":latest"
	}
	return name
}

// upstreamState is what the gateway itself tracks per upstream: requests
// in flight and passive health.
type upstreamState struct {
	inflight     atomic.Int64
	fails        atomic.Int32
	ejectedUntil atomic.Int64 // unix nanos
	ejections    atomic.Int32
	lastFailure  atomic.Int64 // unix nanos
}

// states holds upstreamState by upstream name for the gateway's lifetime.
type states struct {
	m sync.Map
}

func (s *states) get(name string) *upstreamState {
	if v, ok := s.m.Load(name); ok {
		return v.(*upstreamState)
	}
	v, _ := s.m.LoadOrStore(name, &upstreamState{})
	return v.(*upstreamState)
}
