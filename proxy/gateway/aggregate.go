package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// serveAggregate answers the listing routes from every healthy instance:
// the union of models, so a client sees the whole fleet as one server.
func (g *Gateway) serveAggregate(w http.ResponseWriter, r *http.Request, rt route) {
	s := g.upstreams.Snapshot()
	var ups []*Upstream
	for i := range s.Upstreams {
		if u := &s.Upstreams[i]; u.Healthy && !u.Draining {
			ups = append(ups, u)
		}
	}
	if len(ups) == 0 {
		apiError{Status: http.StatusServiceUnavailable, Message: noneHealthy(s), RetryAfter: 5 * time.Second}.write(w, rt.dialect)
		return
	}
	switch rt.kind {
	case kindVersion:
		g.passThrough(w, r, ups, rt)
	case kindTags, kindPS:
		g.unionModels(w, r, ups, rt)
	case kindModels, kindModelInfo:
		g.openAIModels(w, r, ups, rt)
	}
}

func noneHealthy(s *Snapshot) string {
	if len(s.Upstreams) == 0 {
		return "no Ollama instance is running yet: see corral status"
	}
	var why []string
	for _, u := range s.Upstreams {
		why = append(why, fmt.Sprintf("%s is %s", u.Name, u.Status))
	}
	return fmt.Sprintf("all %d instances are unavailable: %s", len(s.Upstreams), strings.Join(why, "; "))
}

// fetch GETs path from each upstream at once; failures are left out.
func (g *Gateway) fetch(ctx context.Context, ups []*Upstream, path string) [][]byte {
	out := make([][]byte, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL.String()+path, nil)
			if err != nil {
				return
			}
			resp, err := g.transport.RoundTrip(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				out[i], _ = io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			}
		})
	}
	wg.Wait()
	return out
}

func (g *Gateway) passThrough(w http.ResponseWriter, r *http.Request, ups []*Upstream, rt route) {
	for _, body := range g.fetch(r.Context(), ups[:1], r.URL.Path) {
		if body != nil {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Write(body)
			return
		}
	}
	apiError{Status: http.StatusBadGateway, Message: "instance " + ups[0].Name + " did not answer"}.write(w, rt.dialect)
}

// unionModels merges /api/tags or /api/ps: one entry per model name, the
// first instance's entry winning (the files are shared, so they agree).
func (g *Gateway) unionModels(w http.ResponseWriter, r *http.Request, ups []*Upstream, rt route) {
	seen := map[string]bool{}
	merged := []json.RawMessage{}
	for _, body := range g.fetch(r.Context(), ups, r.URL.Path) {
		var list struct {
			Models []json.RawMessage `json:"models"`
		}
		if body == nil || json.Unmarshal(body, &list) != nil {
			continue
		}
		for _, m := range list.Models {
			var id struct {
				Name string `json:"name"`
			}
			json.Unmarshal(m, &id)
			if rt.kind == kindTags && seen[id.Name] {
				continue
			}
			seen[id.Name] = true
			merged = append(merged, m)
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"models": merged})
}

// openAIModels merges the instances' /v1/models; /v1/models/{model}
// answers one entry of that union.
func (g *Gateway) openAIModels(w http.ResponseWriter, r *http.Request, ups []*Upstream, rt route) {
	type model struct {
		ID string `json:"id"`
	}
	seen := map[string]bool{}
	merged := []json.RawMessage{}
	want := CanonicalModel(strings.TrimPrefix(r.URL.Path, "/v1/models/"))
	for _, body := range g.fetch(r.Context(), ups, "/v1/models") {
		var list struct {
			Data []json.RawMessage `json:"data"`
		}
		if body == nil || json.Unmarshal(body, &list) != nil {
			continue
		}
		for _, raw := range list.Data {
			var m model
			json.Unmarshal(raw, &m)
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			if rt.kind == kindModelInfo && CanonicalModel(m.ID) == want {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.Write(raw)
				return
			}
			merged = append(merged, raw)
		}
	}
	if rt.kind == kindModelInfo {
		apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("model %q not found", want), Param: "model", Code: "model_not_found"}.write(w, rt.dialect)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(struct {
		Object string            `json:"object"`
		Data   []json.RawMessage `json:"data"`
	}{"list", merged})
}
