//go:build cgo

package gpu_test

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"corral/engine"
	"corral/gpu"
)

// TestDGXA100Plan runs discovery over go-nvml's own DGX A100 mock server
// and plans the instances: one per GPU, each pinned to its own UUID.
func TestDGXA100Plan(t *testing.T) {
	server := dgxa100.New()
	for _, d := range server.Devices {
		// The mock implements only v1 memory info; answer v2 the way an
		// older driver does, so discovery takes its fallback.
		d.(*dgxa100.Device).GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
			return nvml.Memory_v2{}, nvml.ERROR_NOT_SUPPORTED
		}
	}
	inv := gpu.DiscoverWith(server)
	if len(inv.Devices) != 8 {
		t.Fatalf("discovered %d devices (reason %q), want 8", len(inv.Devices), inv.Reason)
	}
	specs, err := engine.Plan("corral", engine.DefaultSettings(), inv)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 8 {
		t.Fatalf("planned %d instances, want 8", len(specs))
	}
	seen := map[string]bool{}
	for i, s := range specs {
		dev := server.Devices[i].(*dgxa100.Device)
		if s.GPU != dev.UUID {
			t.Errorf("instance %d pinned to %q, want the mock's UUID %q", i, s.GPU, dev.UUID)
		}
		if seen[s.GPU] {
			t.Errorf("UUID %s pinned twice", s.GPU)
		}
		seen[s.GPU] = true
		if want := "corral-ollama-" + string(rune('0'+i)); s.Name != want || s.GPUIndex != i {
			t.Errorf("instance %d = %s on GPU %d, want %s on GPU %d", i, s.Name, s.GPUIndex, want, i)
		}
	}
	// A selection keeps the host's indexes and UUIDs.
	sel := engine.DefaultSettings()
	sel.GPUs = "2,5"
	specs, err = engine.Plan("corral", sel, inv)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].GPUIndex != 2 || specs[1].GPUIndex != 5 || specs[1].GPU != server.Devices[5].(*dgxa100.Device).UUID {
		t.Fatalf("--gpus 2,5 planned %+v", specs)
	}
	sel.GPUs = "9"
	if _, err := engine.Plan("corral", sel, inv); err == nil {
		t.Fatal("--gpus 9 on an 8-GPU host planned without error")
	}
}
