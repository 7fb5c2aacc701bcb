//go:build cgo

package gpu

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

func TestDiscoverDGXA100(t *testing.T) {
	m := newDGX(8)
	inv := discover(m.lib)

	if inv.Reason != "" || len(inv.Warnings) > 0 {
		t.Errorf("Reason = %q, Warnings = %q; want none", inv.Reason, inv.Warnings)
	}
	if inv.DriverVersion != "550.54.15" {
		t.Errorf("DriverVersion = %q, want 550.54.15", inv.DriverVersion)
	}
	if inv.CUDAVersion != "12.4" {
		t.Errorf("CUDAVersion = %q, want 12.4", inv.CUDAVersion)
	}
	if len(inv.Devices) != 8 {
		t.Fatalf("got %d devices, want 8", len(inv.Devices))
	}
	uuids := map[string]bool{}
	for i, d := range inv.Devices {
		mockUUID, _ := m.devices[i].GetUUID()
		want := Device{
			Index:       i,
			UUID:        mockUUID,
			Name:        "Mock NVIDIA A100-SXM4-40GB",
			MemoryTotal: 40960 * mib,
			MemoryUsed:  dgxUsed(i) + dgxReserved(),
			PCIBusID:    dgxBusID(i),
		}
		if d != want {
			t.Errorf("device %d\n got %+v\nwant %+v", i, d, want)
		}
		uuids[d.UUID] = true
	}
	if len(uuids) != 8 {
		t.Errorf("got %d distinct UUIDs, want 8", len(uuids))
	}
	if n := len(m.lib.InitCalls()); n != 1 {
		t.Errorf("Init called %d times, want 1", n)
	}
	if n := len(m.lib.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times, want 1", n)
	}
}

func TestDiscoverInitFails(t *testing.T) {
	tests := []struct {
		ret  nvml.Return
		want []string // in the Reason
	}{
		{nvml.ERROR_LIBRARY_NOT_FOUND, []string{"NVML not found", "libnvidia-ml.so.1 could not be loaded", "install the NVIDIA driver"}},
		{nvml.ERROR_DRIVER_NOT_LOADED, []string{"driver not loaded", "modprobe nvidia"}},
		{nvml.ERROR_NO_PERMISSION, []string{"no permission", "/dev/nvidia"}},
		{nvml.ERROR_LIB_RM_VERSION_MISMATCH, []string{"version mismatch", "reboot"}},
		{nvml.ERROR_UNKNOWN, []string{"NVML init failed: ERROR_UNKNOWN"}},
	}
	for _, tt := range tests {
		t.Run(tt.ret.Error(), func(t *testing.T) {
			lib := &mock.Interface{InitFunc: func() nvml.Return { return tt.ret }}
			forbidAllButInit(t, lib)

			inv := discover(lib)

			if len(inv.Devices) != 0 || inv.DriverVersion != "" || inv.CUDAVersion != "" {
				t.Errorf("discover = %+v, want only a Reason", inv)
			}
			if inv.Reason != initReason(tt.ret) {
				t.Errorf("Reason = %q, want %q", inv.Reason, initReason(tt.ret))
			}
			for _, w := range tt.want {
				if !strings.Contains(inv.Reason, w) {
					t.Errorf("Reason %q does not say %q", inv.Reason, w)
				}
			}
			if got := calls(lib); !maps.Equal(got, map[string]int{"Init": 1}) {
				t.Errorf("NVML calls = %v, want only Init", got)
			}
		})
	}
}

func TestDiscoverPartialFailure(t *testing.T) {
	notSupported := func() (string, nvml.Return) { return "", nvml.ERROR_NOT_SUPPORTED }
	tests := []struct {
		name    string
		breakIt func(m *dgx)
		want    func(d *Device) // what device 3 looks like then
		inv     func(inv *Inventory)
		warning string
	}{
		{
			name:    "name not supported",
			breakIt: func(m *dgx) { m.devices[3].GetNameFunc = notSupported },
			want:    func(d *Device) { d.Name = "" },
			warning: "GPU 3: name: ERROR_NOT_SUPPORTED",
		},
		{
			name: "UUID fails",
			breakIt: func(m *dgx) {
				m.devices[3].GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN }
			},
			want:    func(d *Device) { d.UUID = "" },
			warning: "GPU 3: UUID: ERROR_UNKNOWN",
		},
		{
			name: "PCI info not supported",
			breakIt: func(m *dgx) {
				m.devices[3].GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) { return nvml.PciInfo{}, nvml.ERROR_NOT_SUPPORTED }
			},
			want:    func(d *Device) { d.PCIBusID = "" },
			warning: "GPU 3: PCI bus ID: ERROR_NOT_SUPPORTED",
		},
		{
			name: "no memory info at all",
			breakIt: func(m *dgx) {
				m.devices[3].GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) { return nvml.Memory_v2{}, nvml.ERROR_NOT_SUPPORTED }
				m.devices[3].GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_GPU_IS_LOST }
			},
			want:    func(d *Device) { d.MemoryTotal, d.MemoryUsed = 0, 0 },
			warning: "GPU 3: memory: ERROR_GPU_IS_LOST",
		},
		{
			name: "driver version fails",
			breakIt: func(m *dgx) {
				m.lib.SystemGetDriverVersionFunc = func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN }
			},
			inv:     func(inv *Inventory) { inv.DriverVersion = "" },
			warning: "driver version: ERROR_UNKNOWN",
		},
		{
			name: "CUDA version fails",
			breakIt: func(m *dgx) {
				m.lib.SystemGetCudaDriverVersionFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_FUNCTION_NOT_FOUND }
			},
			inv:     func(inv *Inventory) { inv.CUDAVersion = "" },
			warning: "CUDA version: ERROR_FUNCTION_NOT_FOUND",
		},
		{
			name: "cannot open one device",
			breakIt: func(m *dgx) {
				ok := m.lib.DeviceGetHandleByIndexFunc
				m.lib.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
					if i == 3 {
						return nil, nvml.ERROR_GPU_IS_LOST
					}
					return ok(i)
				}
			},
			inv: func(inv *Inventory) {
				inv.Devices = slices.Delete(inv.Devices, 3, 4)
			},
			warning: "GPU 3: skipped, cannot open it: ERROR_GPU_IS_LOST",
		},
	}
	want := discover(newDGX(8).lib)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newDGX(8)
			tt.breakIt(m)

			got := discover(m.lib)

			exp := want
			exp.Devices = slices.Clone(want.Devices)
			if tt.want != nil {
				tt.want(&exp.Devices[3])
			}
			if tt.inv != nil {
				tt.inv(&exp)
			}
			exp.Warnings = []string{tt.warning}
			if !slices.Equal(got.Devices, exp.Devices) {
				t.Errorf("devices\n got %+v\nwant %+v", got.Devices, exp.Devices)
			}
			if got.DriverVersion != exp.DriverVersion || got.CUDAVersion != exp.CUDAVersion || got.Reason != "" {
				t.Errorf("got driver %q, CUDA %q, reason %q; want %q, %q, none",
					got.DriverVersion, got.CUDAVersion, got.Reason, exp.DriverVersion, exp.CUDAVersion)
			}
			if !slices.Equal(got.Warnings, exp.Warnings) {
				t.Errorf("Warnings = %q, want %q", got.Warnings, exp.Warnings)
			}
			if n := len(m.lib.ShutdownCalls()); n != 1 {
				t.Errorf("Shutdown called %d times, want 1", n)
			}
		})
	}
}

func TestDiscoverMemory(t *testing.T) {
	total := uint64(40960 * mib)
	tests := []struct {
		name     string
		symbol   bool        // the library has nvmlDeviceGetMemoryInfo_v2
		v2       nvml.Return // what GetMemoryInfo_v2 returns
		wantUsed uint64
		v2Calls  int
		v1Calls  int
	}{
		{name: "v2", symbol: true, v2: nvml.SUCCESS, wantUsed: 1*gib + 512*mib, v2Calls: 1},
		{name: "v2 not supported falls back to v1", symbol: true, v2: nvml.ERROR_NOT_SUPPORTED, wantUsed: 1*gib + 512*mib, v2Calls: 1, v1Calls: 1},
		{name: "old driver without v2 uses v1 only", symbol: false, wantUsed: 1*gib + 512*mib, v1Calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newDGX(1)
			m.lib.ExtensionsFunc = func() nvml.ExtendedInterface {
				return &mock.ExtendedInterface{LookupSymbolFunc: func(name string) error {
					if name == "nvmlDeviceGetMemoryInfo_v2" && !tt.symbol {
						return os.ErrNotExist
					}
					return nil
				}}
			}
			v2 := m.devices[0].GetMemoryInfo_v2Func
			m.devices[0].GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
				if !tt.symbol {
					t.Error("GetMemoryInfo_v2 called on a library without it")
				}
				if tt.v2 != nvml.SUCCESS {
					return nvml.Memory_v2{}, tt.v2
				}
				return v2()
			}

			inv := discover(m.lib)

			if len(inv.Devices) != 1 {
				t.Fatalf("got %d devices, want 1 (%+v)", len(inv.Devices), inv)
			}
			if d := inv.Devices[0]; d.MemoryTotal != total || d.MemoryUsed != tt.wantUsed {
				t.Errorf("memory total %d used %d, want %d and %d", d.MemoryTotal, d.MemoryUsed, total, tt.wantUsed)
			}
			if n := len(m.devices[0].GetMemoryInfo_v2Calls()); n != tt.v2Calls {
				t.Errorf("GetMemoryInfo_v2 called %d times, want %d", n, tt.v2Calls)
			}
			if n := len(m.devices[0].GetMemoryInfoCalls()); n != tt.v1Calls {
				t.Errorf("GetMemoryInfo called %d times, want %d", n, tt.v1Calls)
			}
		})
	}
}

func TestDiscoverNoDevices(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(m *dgx)
		reason  string
	}{
		{
			name:    "zero GPUs",
			breakIt: func(m *dgx) { m.devices = nil },
			reason:  "the NVIDIA driver sees no GPUs (check nvidia-smi)",
		},
		{
			name: "count fails",
			breakIt: func(m *dgx) {
				m.lib.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
			},
			reason: "NVML could not count the GPUs: ERROR_UNKNOWN",
		},
		{
			name: "no device opens",
			breakIt: func(m *dgx) {
				m.lib.DeviceGetHandleByIndexFunc = func(int) (nvml.Device, nvml.Return) { return nil, nvml.ERROR_NO_PERMISSION }
			},
			reason: "NVML lists 2 GPUs but none could be opened (GPU 1: skipped, cannot open it: ERROR_NO_PERMISSION)",
		},
		{
			name: "a panic in the bindings",
			breakIt: func(m *dgx) {
				m.devices[1].GetNameFunc = nil // the mock panics
			},
			reason: "NVML failed: Device.GetNameFunc: method is nil but Device.GetName was just called",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newDGX(2)
			tt.breakIt(m)

			inv := discover(m.lib)

			if len(inv.Devices) != 0 || inv.Reason != tt.reason {
				t.Errorf("got %d devices, Reason %q; want none and %q", len(inv.Devices), inv.Reason, tt.reason)
			}
			if n := len(m.lib.ShutdownCalls()); n != 1 {
				t.Errorf("Shutdown called %d times, want 1", n)
			}
		})
	}
}

func TestCUDAVersion(t *testing.T) {
	for in, want := range map[int]string{12040: "12.4", 12010: "12.1", 11080: "11.8", 13000: "13.0", 0: "", -1: ""} {
		if got := cudaVersion(in); got != want {
			t.Errorf("cudaVersion(%d) = %q, want %q", in, got, want)
		}
	}
}

// On a host without the NVIDIA driver, the real Discover fails fast and says
// why, in words that tell the operator what to install.
func TestDiscoverWithoutDriver(t *testing.T) {
	if _, err := os.Stat("/dev/nvidia0"); err == nil {
		t.Skip("this host has an NVIDIA GPU")
	}
	start := time.Now()
	inv := Discover()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Discover took %v on a host without a driver", took)
	}
	if len(inv.Devices) != 0 {
		t.Errorf("Devices = %+v, want none", inv.Devices)
	}
	if inv.Reason == "" {
		t.Fatal("Reason is empty")
	}
	for _, w := range []string{"libnvidia-ml.so.1 could not be loaded", "install the NVIDIA driver"} {
		if !strings.Contains(inv.Reason, w) {
			t.Errorf("Reason %q does not say %q", inv.Reason, w)
		}
	}
	t.Logf("Reason: %s", inv.Reason)
}
