//go:build cgo

package gpu

import (
	"context"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// runSampler starts s.Run and returns a func that cancels it and waits for
// its result.
func runSampler(t *testing.T, s *Sampler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
			return nil
		}
	}
}

// waitFor polls until cond holds, or fails the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSamplerDGXA100(t *testing.T) {
	m := newDGX(8)
	s := newNVMLSampler(m.lib, 2*time.Millisecond)
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return at }

	if got := s.Latest(); got != nil {
		t.Fatalf("Latest before Run = %v, want nil", got)
	}
	stop := runSampler(t, s)
	// Several samples, read while Run writes them (go test -race).
	waitFor(t, "three samples", func() bool {
		return len(s.Latest()) == 8 && len(m.devices[7].GetPowerUsageCalls()) >= 3
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}

	got := s.Latest()
	if len(got) != 8 {
		t.Fatalf("Latest has %d metrics, want 8", len(got))
	}
	for i, mt := range got {
		if mt.Index != i || mt.UUID != dgxUUID(i) || !mt.At.Equal(at) {
			t.Errorf("metrics %d: index %d, UUID %q, at %v", i, mt.Index, mt.UUID, mt.At)
		}
		if mt.MemoryTotal != 40960*mib || mt.MemoryUsed != dgxUsed(i)+dgxReserved() {
			t.Errorf("metrics %d: memory %d of %d", i, mt.MemoryUsed, mt.MemoryTotal)
		}
		if mt.UtilizationGPU == 0 || mt.UtilizationGPU > 100 || mt.UtilizationMemory != uint32(5*i) {
			t.Errorf("metrics %d: utilization GPU %d%%, memory %d%%", i, mt.UtilizationGPU, mt.UtilizationMemory)
		}
		if mt.TemperatureC != dgxTemperature(i) {
			t.Errorf("metrics %d: temperature %d, want %d", i, mt.TemperatureC, dgxTemperature(i))
		}
		if want := float64(60 + i); mt.PowerW != want || mt.PowerLimitW != 400 {
			t.Errorf("metrics %d: power %vW of %vW, want %vW of 400W", i, mt.PowerW, mt.PowerLimitW, want)
		}
	}
	got[0].UUID = "changed"
	if s.Latest()[0].UUID != dgxUUID(0) {
		t.Error("Latest returned the sampler's own slice")
	}
	if n := len(m.lib.InitCalls()); n != 1 {
		t.Errorf("Init called %d times, want 1 for the whole run", n)
	}
	if n := len(m.lib.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times, want 1 when Run ends", n)
	}
}

func TestSamplerPartialFailure(t *testing.T) {
	m := newDGX(8)
	m.devices[2].GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	m.devices[2].GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	m.devices[5].GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	m.devices[6].GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{}, nvml.ERROR_GPU_IS_LOST
	}
	s := newNVMLSampler(m.lib, time.Hour)

	stop := runSampler(t, s)
	waitFor(t, "a sample", func() bool { return len(s.Latest()) > 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	got := s.Latest()
	if len(got) != 8 {
		t.Fatalf("Latest has %d metrics, want all 8 devices", len(got))
	}
	if mt := got[2]; mt.PowerW != 0 || mt.PowerLimitW != 0 || mt.TemperatureC != dgxTemperature(2) {
		t.Errorf("device without power readings: %+v", mt)
	}
	if mt := got[5]; mt.TemperatureC != 0 || mt.PowerW != 65 {
		t.Errorf("device without temperature: %+v", mt)
	}
	if mt := got[6]; mt.UtilizationGPU != 0 || mt.UtilizationMemory != 0 || mt.MemoryTotal == 0 {
		t.Errorf("device without utilization: %+v", mt)
	}
}

func TestSamplerInitFails(t *testing.T) {
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	forbidAllButInit(t, lib)
	s := newNVMLSampler(lib, time.Millisecond)

	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }() // never cancelled
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run kept running without NVML")
	}
	if got := s.Latest(); len(got) != 0 {
		t.Errorf("Latest = %v, want empty", got)
	}
	if got := calls(lib); !maps.Equal(got, map[string]int{"Init": 1}) {
		t.Errorf("NVML calls = %v, want only Init", got)
	}
}

func TestSamplerPanicStopsRun(t *testing.T) {
	m := newDGX(2)
	m.devices[1].GetTemperatureFunc = nil // the mock panics
	s := newNVMLSampler(m.lib, time.Millisecond)

	err := s.Run(t.Context())

	want := "gpu: sampling failed: Device.GetTemperatureFunc: method is nil but Device.GetTemperature was just called"
	if err == nil || err.Error() != want {
		t.Errorf("Run = %v, want %q", err, want)
	}
	if n := len(m.lib.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times, want 1", n)
	}
}

func TestSamplerWithoutDriver(t *testing.T) {
	if _, err := os.Stat("/dev/nvidia0"); err == nil {
		t.Skip("this host has an NVIDIA GPU")
	}
	s := NewSampler(time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if ctx.Err() != nil {
		t.Error("Run waited for its context instead of returning at once")
	}
	if got := s.Latest(); len(got) != 0 {
		t.Errorf("Latest = %v, want empty", got)
	}
}
