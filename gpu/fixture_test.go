//go:build cgo

package gpu

import (
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
)

// The tests run against an 8×A100 machine built from go-nvml's mock.Interface
// and mock.Device with the values of its dgxa100 mock server: the same GPU
// config (gpus.A100_SXM4_40GB), driver 550.54.15 and CUDA 12040. dgxa100
// itself imports github.com/google/uuid, which this module does not require.
// Unlike dgxa100, whose devices implement only GetMemoryInfo and no
// utilization, temperature or power, these devices answer every call the
// package makes, so each test can break exactly the call it is about.
const (
	dgxDriverVersion = "550.54.15"
	dgxCUDAVersion   = 12040

	mib = 1 << 20
	gib = 1 << 30
)

var a100 = gpus.A100_SXM4_40GB

// dgx is the fake machine: an NVML whose funcs tests may replace, and its
// devices.
type dgx struct {
	lib     *mock.Interface
	devices []*mock.Device
}

func newDGX(n int) *dgx {
	m := &dgx{}
	for i := range n {
		m.devices = append(m.devices, newA100(i))
	}
	m.lib = &mock.Interface{
		InitFunc:     func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc: func() nvml.Return { return nvml.SUCCESS },
		ExtensionsFunc: func() nvml.ExtendedInterface {
			return &mock.ExtendedInterface{LookupSymbolFunc: func(string) error { return nil }}
		},
		SystemGetDriverVersionFunc:     func() (string, nvml.Return) { return dgxDriverVersion, nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return dgxCUDAVersion, nvml.SUCCESS },
		DeviceGetCountFunc:             func() (int, nvml.Return) { return len(m.devices), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if i < 0 || i >= len(m.devices) {
				return nil, nvml.ERROR_INVALID_ARGUMENT
			}
			return m.devices[i], nvml.SUCCESS
		},
	}
	return m
}

// The fake A100 number i reports values derived from i, so that a test can
// tell the devices apart.
func dgxUUID(i int) string        { return fmt.Sprintf("GPU-%08x-a100-4000-8000-%012x", 0xa1000000+i, i) }
func dgxBusID(i int) string       { return fmt.Sprintf("00000000:%02X:00.0", 0x07+0x10*i) }
func dgxUsed(i int) uint64        { return uint64(i+1) * gib }
func dgxReserved() uint64         { return 512 * mib }
func dgxTemperature(i int) uint32 { return uint32(30 + i) }
func dgxPowerMW(i int) uint32     { return uint32(60000 + 1000*i) }

const dgxPowerLimitMW = 400000

func newA100(i int) *mock.Device {
	total := a100.MemoryMB * mib
	var busy atomic.Uint32 // utilization moves on every read
	return &mock.Device{
		GetUUIDFunc: func() (string, nvml.Return) { return dgxUUID(i), nvml.SUCCESS },
		GetNameFunc: func() (string, nvml.Return) { return a100.Name, nvml.SUCCESS },
		GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
			used := dgxUsed(i) + dgxReserved()
			return nvml.Memory{Total: total, Used: used, Free: total - used}, nvml.SUCCESS
		},
		GetMemoryInfo_v2Func: func() (nvml.Memory_v2, nvml.Return) {
			return nvml.Memory_v2{
				Total:    total,
				Reserved: dgxReserved(),
				Used:     dgxUsed(i),
				Free:     total - dgxReserved() - dgxUsed(i),
			}, nvml.SUCCESS
		},
		GetPciInfoFunc: func() (nvml.PciInfo, nvml.Return) {
			p := nvml.PciInfo{PciDeviceId: a100.PciDeviceId}
			for j, c := range dgxBusID(i) {
				p.BusId[j] = int8(c)
			}
			return p, nvml.SUCCESS
		},
		GetUtilizationRatesFunc: func() (nvml.Utilization, nvml.Return) {
			n := busy.Add(1)
			return nvml.Utilization{Gpu: (uint32(10*i) + n) % 101, Memory: uint32(5 * i)}, nvml.SUCCESS
		},
		GetTemperatureFunc: func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
			if s != nvml.TEMPERATURE_GPU {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return dgxTemperature(i), nvml.SUCCESS
		},
		GetPowerUsageFunc:         func() (uint32, nvml.Return) { return dgxPowerMW(i), nvml.SUCCESS },
		GetEnforcedPowerLimitFunc: func() (uint32, nvml.Return) { return dgxPowerLimitMW, nvml.SUCCESS },
	}
}

// forbidAllButInit makes every NVML call other than Init fail the test.
func forbidAllButInit(t *testing.T, lib *mock.Interface) {
	fail := func(name string) { t.Errorf("%s called after a failed Init", name) }
	lib.ShutdownFunc = func() nvml.Return { fail("Shutdown"); return nvml.SUCCESS }
	lib.ExtensionsFunc = func() nvml.ExtendedInterface { fail("Extensions"); return nil }
	lib.SystemGetDriverVersionFunc = func() (string, nvml.Return) { fail("SystemGetDriverVersion"); return "", nvml.SUCCESS }
	lib.SystemGetCudaDriverVersionFunc = func() (int, nvml.Return) { fail("SystemGetCudaDriverVersion"); return 0, nvml.SUCCESS }
	lib.DeviceGetCountFunc = func() (int, nvml.Return) { fail("DeviceGetCount"); return 0, nvml.SUCCESS }
	lib.DeviceGetHandleByIndexFunc = func(int) (nvml.Device, nvml.Return) {
		fail("DeviceGetHandleByIndex")
		return nil, nvml.ERROR_UNINITIALIZED
	}
}

// calls counts the recorded calls of every method of a go-nvml mock (from
// its XxxCalls methods), by method name, leaving out those never called.
func calls(m any) map[string]int {
	got := map[string]int{}
	v := reflect.ValueOf(m)
	for i := range v.NumMethod() {
		name := v.Type().Method(i).Name
		method := v.Method(i)
		if !strings.HasSuffix(name, "Calls") || method.Type().NumIn() != 0 || method.Type().NumOut() != 1 {
			continue
		}
		if n := method.Call(nil)[0].Len(); n > 0 {
			got[strings.TrimSuffix(name, "Calls")] = n
		}
	}
	return got
}
