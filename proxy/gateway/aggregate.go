package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// serveAggregate answers the routes about the fleet rather than one
// model: the lists of models, which show the whole fleet as one server
// and only what the key may use, and the version.
func (g *Gateway) serveAggregate(w http.ResponseWriter, r *http.Request, rt route, key string) {
	if rt.kind == kindModelInfo {
		g.modelInfo(w, r, rt, key)
		return
	}
	s := g.upstreams.Snapshot()
	ups := serving(s)
	if len(ups) == 0 {
		apiError{Status: http.StatusServiceUnavailable, Message: noneHealthy(s), RetryAfter: 5 * time.Second}.write(w, rt.dialect)
		return
	}
	allowed := g.mayUse(r.Context(), key)
	switch rt.kind {
	case kindVersion:
		g.passThrough(w, r, ups, rt)
	case kindPS:
		g.loadedModels(w, r, ups, allowed)
	case kindTags:
		writeJSON(w, struct {
			Models []json.RawMessage `json:"models"`
		}{tagEntries(listing(ups, allowed))})
	case kindModels:
		writeJSON(w, struct {
			Object string        `json:"object"`
			Data   []openAIModel `json:"data"`
		}{"list", openAIModels(listing(ups, allowed))})
	}
}

// serving are the instances that take requests: healthy, not draining.
func serving(s *Snapshot) []*Upstream {
	var ups []*Upstream
	for i := range s.Upstreams {
		if u := &s.Upstreams[i]; u.Healthy && !u.Draining {
			ups = append(ups, u)
		}
	}
	return ups
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

// mayUse reports whether key may use a model, for the lists: a key with
// an allow-list sees only those models.
func (g *Gateway) mayUse(ctx context.Context, key string) func(model string) bool {
	return func(model string) bool {
		_, err := g.auth.Authorize(ctx, key, model)
		return err == nil
	}
}

// listing is the union of what the instances list, from the snapshot
// routing reads: one entry per model (the files are shared, so the
// instances agree; the first wins), newest first as Ollama sorts them,
// and only the models allowed.
func listing(ups []*Upstream, allowed func(model string) bool) []Listed {
	seen := map[string]bool{}
	var out []Listed
	add := func(l Listed) {
		c := CanonicalModel(l.Name)
		if seen[c] || !allowed(c) {
			return
		}
		seen[c] = true
		out = append(out, l)
	}
	for _, u := range ups {
		for _, l := range u.Listed {
			if u.Models[CanonicalModel(l.Name)] {
				add(l)
			}
		}
	}
	for _, u := range ups {
		for m := range u.Models {
			add(Listed{Name: m})
		}
	}
	slices.SortStableFunc(out, func(a, b Listed) int {
		return cmp.Or(b.ModifiedAt.Compare(a.ModifiedAt), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// tagEntries are /api/tags entries: the instance's own, or one made of
// the name.
func tagEntries(list []Listed) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(list))
	for _, l := range list {
		e := l.Entry
		if len(e) == 0 {
			e, _ = json.Marshal(struct {
				Name  string `json:"name"`
				Model string `json:"model"`
			}{l.Name, l.Name})
		}
		out = append(out, e)
	}
	return out
}

// openAIModel is an entry of /v1/models, as Ollama makes it from its list.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func openAIModels(list []Listed) []openAIModel {
	out := make([]openAIModel, 0, len(list))
	for _, l := range list {
		out = append(out, toOpenAIModel(l))
	}
	return out
}

func toOpenAIModel(l Listed) openAIModel {
	m := openAIModel{ID: l.Name, Object: "model", OwnedBy: namespace(l.Name)}
	if !l.ModifiedAt.IsZero() {
		m.Created = l.ModifiedAt.Unix()
	}
	return m
}

// namespace is the owner Ollama names for a model: the part before its
// name ("library" for the default registry's own).
func namespace(name string) string {
	if i := strings.IndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	parts := strings.Split(name, "/")
	if len(parts) < 2 {
		return "library"
	}
	return parts[len(parts)-2]
}

// modelInfo answers /v1/models/{model}: its entry in the list, after one
// re-check of the instances when the snapshot does not have it.
func (g *Gateway) modelInfo(w http.ResponseWriter, r *http.Request, rt route, key string) {
	want := CanonicalModel(strings.TrimPrefix(r.URL.Path, "/v1/models/"))
	if _, err := g.auth.Authorize(r.Context(), key, want); err != nil {
		authError(err).write(w, rt.dialect)
		return
	}
	s, ok := g.findModel(r.Context(), want)
	if l := listing(serving(s), func(m string) bool { return m == want }); ok && len(l) > 0 {
		writeJSON(w, toOpenAIModel(l[0]))
		return
	}
	if aerr := unavailable(s, want, g.mayUse(r.Context(), key)); aerr != nil {
		aerr.write(w, rt.dialect)
		return
	}
	apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("model %q not found", want), Param: "model", Code: "model_not_found"}.write(w, rt.dialect)
}

func noneHealthy(s *Snapshot) string {
	if len(s.Upstreams) == 0 {
		return noneRunning(s)
	}
	var why []string
	for _, u := range s.Upstreams {
		why = append(why, u.Name+" is "+public(u.Status))
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

// loadedModels merges the instances' /api/ps, read now: what is in
// memory changes by the second, and routing does not wait for it. A model
// loaded on two instances is listed twice, once for each.
func (g *Gateway) loadedModels(w http.ResponseWriter, r *http.Request, ups []*Upstream, allowed func(string) bool) {
	merged := []json.RawMessage{}
	for _, body := range g.fetch(r.Context(), ups, "/api/ps") {
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
			if json.Unmarshal(m, &id) == nil && allowed(CanonicalModel(id.Name)) {
				merged = append(merged, m)
			}
		}
	}
	writeJSON(w, struct {
		Models []json.RawMessage `json:"models"`
	}{merged})
}
