package engine

import (
	"strings"
	"testing"
	"time"

	"corral/engine/store"
	"corral/gpu"
)

func TestPlanCPU(t *testing.T) {
	s := DefaultSettings()
	s.CPUInstances = 2
	s.KeepAlive = "1h"
	s.NumParallel = 4
	specs, err := Plan("staging", s, gpu.Inventory{Reason: "no driver"})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("specs = %d, want 2", len(specs))
	}
	for i, sp := range specs {
		if sp.Name != instanceName("staging", i) || sp.GPU != "cpu" || sp.GPUIndex != -1 || sp.Image != DefaultOllamaImage {
			t.Errorf("spec %d = %+v", i, sp)
		}
		if sp.Env["OLLAMA_KEEP_ALIVE"] != "1h" || sp.Env["OLLAMA_NUM_PARALLEL"] != "4" || sp.Env["OLLAMA_HOST"] != "0.0.0.0:11434" {
			t.Errorf("spec %d env = %v", i, sp.Env)
		}
	}
	s.GPUs = "none"
	if specs, _ := Plan("corral", s, gpu.Inventory{Devices: []gpu.Device{{Index: 0, UUID: "GPU-x"}}}); len(specs) != 2 || specs[0].GPU != "cpu" {
		t.Fatalf("--gpus none on a GPU host planned %+v", specs)
	}
}

func TestSpecHash(t *testing.T) {
	a := Spec{Name: "n", GPU: "cpu", Image: "i:1", Env: map[string]string{"A": "1", "B": "2"}}
	b := Spec{Name: "n", GPU: "cpu", Image: "i:1", Env: map[string]string{"B": "2", "A": "1"}}
	if specHash(a, false) != specHash(b, false) {
		t.Fatal("hash depends on map order")
	}
	changed := []Spec{
		{Name: "n", GPU: "cpu", Image: "i:2", Env: a.Env},
		{Name: "n", GPU: "GPU-1", Image: "i:1", Env: a.Env},
		{Name: "n", GPU: "cpu", Image: "i:1", Env: map[string]string{"A": "1"}},
	}
	for _, c := range changed {
		if specHash(c, false) == specHash(a, false) {
			t.Errorf("hash unchanged for %+v", c)
		}
	}
	if specHash(a, true) == specHash(a, false) {
		t.Error("publishing must change the hash")
	}
	// Weight is a balancing knob, not part of the container.
	w := a
	w.Weight = 5
	if specHash(w, false) != specHash(a, false) {
		t.Error("weight changed the container hash")
	}
}

func TestSettingsValidate(t *testing.T) {
	bad := Settings{GPUs: "all", CPUInstances: -1, OllamaImage: " ", KeepAlive: "soon", NumParallel: -2}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--ollama-image is empty", "--cpu-instances -1", "--num-parallel -2", `--keep-alive "soon"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	for _, ka := range []string{"5m", "-1", "300", "1h30m"} {
		s := DefaultSettings()
		s.KeepAlive = ka
		if err := s.Validate(); err != nil {
			t.Errorf("keep-alive %q: %v", ka, err)
		}
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := LoadSettings(st)
	if err != nil || got != DefaultSettings() {
		t.Fatalf("empty store settings = %+v, %v", got, err)
	}
	want := Settings{GPUs: "0,1", CPUInstances: 3, OllamaImage: "x:1", KeepAlive: "-1", NumParallel: 2}
	if err := SaveSettings(st, want); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadSettings(st); err != nil || got != want {
		t.Fatalf("loaded %+v, %v; want %+v", got, err, want)
	}
}

func TestRestartDelay(t *testing.T) {
	cases := map[int]time.Duration{0: 0, 1: 0, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 20: maxRestartDelay}
	for n, want := range cases {
		if got := restartDelay(n); got != want {
			t.Errorf("restartDelay(%d) = %s, want %s", n, got, want)
		}
	}
}
