package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Route is one instance as the gateway sees it. The engine replaces the
// whole table atomically when anything changes; readers never lock.
type Route struct {
	Name     string
	URL      string // base URL of the Ollama API
	GPU      string // device UUID or "cpu"
	GPUIndex int
	Healthy  bool
	Draining bool
	Status   string // phase and reason, for error messages
	Weight   int
	Parallel int           // requests one model serves at once (OLLAMA_NUM_PARALLEL)
	Models   []ModelInfo   // models present, from /api/tags
	Loaded   []LoadedModel // models in memory, from /api/ps
	PolledAt time.Time     // when Models and Loaded were read
	Since    time.Time     // when it entered its phase: a healthy one is healthy since then
}

// ModelInfo is one entry of an instance's /api/tags.
type ModelInfo struct {
	Name       string    `json:"name"` // as Ollama names it ("llama3.2:1b")
	Size       int64     `json:"size"`
	Digest     string    `json:"digest"`
	ModifiedAt time.Time `json:"modified_at"`
	Details    struct {
		Format            string `json:"format"`
		Family            string `json:"family"`
		ParameterSize     string `json:"parameter_size"`
		QuantizationLevel string `json:"quantization_level"`
	} `json:"details"`
	// Raw is the entry as the instance listed it, every field kept, for
	// the gateway's own /api/tags.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON reads an /api/tags entry and keeps its bytes in Raw.
func (m *ModelInfo) UnmarshalJSON(b []byte) error {
	type plain ModelInfo // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*m = ModelInfo(p)
	m.Raw = bytes.Clone(b)
	return nil
}

// LoadedModel is one entry of an instance's /api/ps.
type LoadedModel struct {
	Name      string    `json:"name"`
	SizeVRAM  int64     `json:"size_vram"`
	Size      int64     `json:"size"`
	ExpiresAt time.Time `json:"expires_at"`
}

// RouteTable is an immutable snapshot; Version grows with every change.
type RouteTable struct {
	Version uint64
	Routes  []Route
	// Apps are the companion containers by name (the chat UI for the
	// front door); only Name, URL, Healthy, Status and Since are set.
	Apps map[string]Route
	// Waiting are the instances without an address yet (pending, pulling
	// their image, failed before they ran), so the gateway can say why
	// none serves; only Name, GPU, GPUIndex, Status and Since are set.
	Waiting []Route
}

// Routes returns the current table. It never blocks on the engine.
func (e *Engine) Routes() *RouteTable {
	return e.routes.Load()
}

// publish rebuilds the route table; the caller holds e.mu.
func (e *Engine) publish() {
	old := e.routes.Load()
	t := &RouteTable{Version: old.Version + 1}
	for _, s := range e.desired {
		in := e.inst[s.Name]
		if in == nil {
			continue
		}
		if isApp(s) {
			if t.Apps == nil {
				t.Apps = map[string]Route{}
			}
			t.Apps[s.Name] = Route{Name: s.Name, URL: in.endpoint, Healthy: in.phase == PhaseHealthy && in.endpoint != "",
				Status: string(in.phase) + ": " + in.reason, Since: in.since}
			continue
		}
		if in.endpoint == "" {
			t.Waiting = append(t.Waiting, Route{Name: s.Name, GPU: s.GPU, GPUIndex: s.GPUIndex,
				Status: string(in.phase) + ": " + in.reason, Since: in.since})
			continue
		}
		t.Routes = append(t.Routes, Route{
			Name: s.Name, URL: in.endpoint, GPU: s.GPU, GPUIndex: s.GPUIndex,
			Healthy:  in.phase == PhaseHealthy,
			Draining: in.phase == PhaseDraining,
			Status:   string(in.phase) + ": " + in.reason,
			Weight:   max(s.Weight, 1),
			Parallel: parallelOf(s),
			Models:   in.models, Loaded: in.loaded, PolledAt: in.polledAt, Since: in.since,
		})
	}
	e.routes.Store(t)
}

// parallelOf is the instance's OLLAMA_NUM_PARALLEL, or Ollama's default of 1.
func parallelOf(s Spec) int {
	if n, err := strconv.Atoi(s.Env["OLLAMA_NUM_PARALLEL"]); err == nil && n > 0 {
		return n
	}
	return 1
}

// probe reads what the health check needs from one instance: the version
// (liveness), then the models present and loaded (for routing).
func (e *Engine) probe(ctx context.Context, endpoint string) probeResult {
	var r probeResult
	var v struct {
		Version string `json:"version"`
	}
	if r.err = e.getJSON(ctx, endpoint+"/api/version", &v); r.err != nil {
		return r
	}
	r.version = v.Version
	var tags struct {
		Models []ModelInfo `json:"models"`
	}
	var ps struct {
		Models []LoadedModel `json:"models"`
	}
	// A failure here is not a health failure: the instance answered.
	if err := e.getJSON(ctx, endpoint+"/api/tags", &tags); err == nil {
		r.models = tags.Models
		r.modelsOK = true
	}
	if err := e.getJSON(ctx, endpoint+"/api/ps", &ps); err == nil {
		r.loaded = ps.Models
		r.loadedOK = true
	}
	r.at = e.now()
	return r
}

func (e *Engine) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := e.probeClient.Do(req)
	if err != nil {
		return netReason(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 4<<20)).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", req.URL.Path, err)
	}
	return nil
}
