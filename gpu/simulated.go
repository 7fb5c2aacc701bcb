//go:build cgo

package gpu

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
)

// Simulated is a machine of n A100 GPUs that exist only in go-nvml's
// mocks, seen through the same discovery and sampler as real ones: for
// trying corral and its pages on a host without GPUs, and for tests of
// the whole binary. Their figures move (utilization rises with every
// sample) so live views have something to show.
func Simulated(n int, interval time.Duration) (Inventory, *Sampler) {
	m := newDGX(n)
	return discover(m.lib), newNVMLSampler(m.lib, interval)
}

// The simulated machine (the tests', and --simulate-gpus) is A100s built
// from go-nvml's mock.Interface and mock.Device with the values of its
// dgxa100 mock server: the same GPU config (gpus.A100_SXM4_40GB), driver
// 550.54.15 and CUDA 12040. dgxa100 itself imports github.com/google/uuid,
// which this module does not require. Unlike dgxa100, whose devices
// implement only GetMemoryInfo and no utilization, temperature or power,
// these devices answer every call the package makes, so each test can
// break exactly the call it is about.
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
