package models

import (
	"context"
	"errors"
	"strings"
	"testing"

	"corral/engine"
	"corral/engine/store"
)

type fakeRoutes struct{ t *engine.RouteTable }

func (f *fakeRoutes) Routes() *engine.RouteTable { return f.t }
func (f *fakeRoutes) Refresh()                   {}

func route(name string, gpuIndex int, uuid string, models ...string) engine.Route {
	r := engine.Route{Name: name, URL: "http://unused", GPU: uuid, GPUIndex: gpuIndex, Healthy: true, Status: "healthy: ok"}
	for _, m := range models {
		r.Models = append(r.Models, engine.ModelInfo{Name: m, Size: 1 << 30})
	}
	return r
}

func TestPlaceChecks(t *testing.T) {
	big := engine.ModelInfo{Name: "llama3.1:70b", Size: 18_200 << 20 * 1024 / 1000}
	r0 := route("corral-ollama-0", 0, "GPU-0", "small:1b")
	r1 := route("corral-ollama-1", 1, "GPU-1", "small:1b")
	r0.Models = append(r0.Models, big)
	r1.Models = append(r1.Models, big)
	routes := &fakeRoutes{&engine.RouteTable{Routes: []engine.Route{r0, r1}}}
	free := map[string]uint64{"GPU-0": 40 << 30, "GPU-1": 15_600 << 20 * 1024 / 1000}
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := New(Config{Store: st, GPUFree: func(u string) (uint64, uint64, bool) { f, ok := free[u]; return f, 80 << 30, ok }}, routes)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		p    Placement
		want string
		kind error
	}{
		{Placement{Model: "llama3.1:70b", GPUs: []int{1}}, "llama3.1:70b does not fit: needs 18.2 GiB, GPU 1 has 15.6 GiB free", nil},
		{Placement{Model: "llama3.1:70b", Replicas: 2}, "GPU 1 has 15.6 GiB free", nil},
		{Placement{Model: "nope", Replicas: 1}, "not on any instance", ErrNotFound},
		{Placement{Model: "small:1b", Replicas: 3}, "--replicas 3: there are only 2 instances", nil},
		{Placement{Model: "small:1b", GPUs: []int{0, 0}}, "GPU 0 is listed twice", nil},
		{Placement{Model: "small:1b", GPUs: []int{5}}, "--gpus 5: no instance on GPU 5 (instances run on [0 1])", nil},
		{Placement{Model: "small:1b", Replicas: 1, GPUs: []int{0}}, "either --replicas or --gpus", nil},
		{Placement{Model: "small:1b", Replicas: 1, KeepAlive: "soon"}, `--keep-alive "soon"`, nil},
	}
	for _, tc := range cases {
		err := m.Place(ctx, tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
			t.Errorf("Place(%+v) = %v, want %q", tc.p, err, tc.want)
		}
	}
	if len(m.Placements()) != 0 {
		t.Fatalf("refused placements were stored: %+v", m.Placements())
	}
	// Fits on GPU 0 alone; stored, and a new manager reads it back.
	if err := m.Place(ctx, Placement{Model: "llama3.1:70b", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.Place(ctx, Placement{Model: "llama3.1:70b", GPUs: []int{0}, KeepAlive: "30m"}); err != nil {
		t.Fatal(err)
	}
	m2, err := New(Config{Store: st}, routes)
	if err != nil {
		t.Fatal(err)
	}
	if p := m2.Placements(); len(p) != 1 || p[0].GPUs[0] != 0 || p[0].KeepAlive != "30m" {
		t.Fatalf("placements after reopen = %+v", p)
	}
	if err := m2.Delete(ctx, "llama3.1:70b"); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete of a placed model: %v", err)
	}
}

func TestChooseTargetsIsStable(t *testing.T) {
	a, b, c := route("i-0", -1, "cpu", "m:latest"), route("i-1", -1, "cpu", "m:latest"), route("i-2", -1, "cpu", "m:latest")
	c.Loaded = []engine.LoadedModel{{Name: "m:latest"}}
	p := Placement{Model: "m:latest", Replicas: 2}
	if got := chooseTargets(p, []engine.Route{a, b, c}, nil); strings.Join(got, ",") != "i-0,i-2" {
		t.Fatalf("first choice = %v, want the loaded i-2 plus i-0", got)
	}
	// i-0 went away and came back: the previous choice (i-1, i-2) holds.
	if got := chooseTargets(p, []engine.Route{a, b, c}, []string{"i-1", "i-2"}); strings.Join(got, ",") != "i-1,i-2" {
		t.Fatalf("choice after heal = %v, want the previous i-1,i-2", got)
	}
	// On a CPU host, --gpus numbers are instance numbers.
	if got := chooseTargets(Placement{Model: "m:latest", GPUs: []int{1}}, []engine.Route{a, b, c}, nil); strings.Join(got, ",") != "i-1" {
		t.Fatalf("pinned = %v", got)
	}
}
