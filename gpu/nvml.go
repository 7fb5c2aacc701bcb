//go:build cgo

package gpu

import (
	"errors"
	"fmt"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVML reports whether this binary can use GPUs: built with cgo, it loads
// NVML from the driver at run time.
const NVML = true

// Discover finds the GPUs through NVML: it initializes NVML, reads every
// device once and shuts NVML down again. It never panics. When NVML cannot
// start, it calls nothing else and returns no devices and a Reason.
func Discover() Inventory {
	return discover(nvml.New())
}

// NewSampler returns a sampler that reads the GPUs through NVML every
// interval (5s when interval is not positive).
func NewSampler(interval time.Duration) *Sampler {
	return newNVMLSampler(nvml.New(), interval)
}

func newNVMLSampler(lib nvml.Interface, interval time.Duration) *Sampler {
	return newSampler(func() (probe, error) { return openProbe(lib) }, interval)
}

// discover is Discover against any NVML, the mocks in tests included.
func discover(lib nvml.Interface) (inv Inventory) {
	defer func() {
		if r := recover(); r != nil {
			inv = Inventory{Reason: fmt.Sprintf("NVML failed: %v", r)}
		}
	}()
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return Inventory{Reason: initReason(ret)}
	}
	defer lib.Shutdown()

	warn := func(format string, args ...any) {
		inv.Warnings = append(inv.Warnings, fmt.Sprintf(format, args...))
	}
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		inv.DriverVersion = v
	} else {
		warn("driver version: %v", ret)
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		inv.CUDAVersion = cudaVersion(v)
	} else {
		warn("CUDA version: %v", ret)
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		inv.Reason = fmt.Sprintf("NVML could not count the GPUs: %v", ret)
		return inv
	}
	if n == 0 {
		inv.Reason = "the NVIDIA driver sees no GPUs (check nvidia-smi)"
		return inv
	}

	v2 := hasMemoryV2(lib)
	for i := range n {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			warn("GPU %d: skipped, cannot open it: %v", i, ret)
			continue
		}
		d := Device{Index: i}
		if d.UUID, ret = dev.GetUUID(); ret != nvml.SUCCESS {
			warn("GPU %d: UUID: %v", i, ret)
		}
		if d.Name, ret = dev.GetName(); ret != nvml.SUCCESS {
			warn("GPU %d: name: %v", i, ret)
		}
		if d.MemoryTotal, d.MemoryUsed, ret = memoryInfo(dev, v2); ret != nvml.SUCCESS {
			warn("GPU %d: memory: %v", i, ret)
		}
		if pci, ret := dev.GetPciInfo(); ret == nvml.SUCCESS {
			d.PCIBusID = busID(pci)
		} else {
			warn("GPU %d: PCI bus ID: %v", i, ret)
		}
		inv.Devices = append(inv.Devices, d)
	}
	if len(inv.Devices) == 0 {
		inv.Reason = fmt.Sprintf("NVML lists %d GPUs but none could be opened (%s)", n, inv.Warnings[len(inv.Warnings)-1])
	}
	return inv
}

// initReason says why NVML did not start and what to do about it.
func initReason(ret nvml.Return) string {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "NVML not found: libnvidia-ml.so.1 could not be loaded; install the NVIDIA driver " +
			"(inside a container, run it with the NVIDIA container runtime)"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "NVIDIA driver not loaded: NVML is installed but the kernel module is not running; " +
			"load it (modprobe nvidia) or reboot"
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		return "NVIDIA driver/library version mismatch: the driver was upgraded without a reboot; reboot the host"
	case nvml.ERROR_NO_PERMISSION:
		return "NVML has no permission to open the GPUs: run corral as root or give its user access to /dev/nvidia*"
	default:
		return fmt.Sprintf("NVML init failed: %v", ret)
	}
}

// cudaVersion formats NVML's CUDA driver version (12040) as "12.4".
func cudaVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// hasMemoryV2 reports whether the library has nvmlDeviceGetMemoryInfo_v2
// (drivers from R510 on); calling a symbol it lacks would crash.
func hasMemoryV2(lib nvml.Interface) bool {
	ext := lib.Extensions()
	return ext != nil && ext.LookupSymbol("nvmlDeviceGetMemoryInfo_v2") == nil
}

// memoryInfo returns the device's total and used memory in bytes, used
// counting what the driver reserves. It prefers GetMemoryInfo_v2 and falls
// back to GetMemoryInfo when v2 is missing or fails.
func memoryInfo(dev nvml.Device, v2 bool) (total, used uint64, ret nvml.Return) {
	if v2 {
		m, ret := dev.GetMemoryInfo_v2()
		if ret == nvml.SUCCESS {
			return m.Total, m.Used + m.Reserved, ret
		}
	}
	m, ret := dev.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return 0, 0, ret
	}
	return m.Total, m.Used, ret
}

// busID returns the PCI bus ID, like "00000000:07:00.0", from NVML's C string.
func busID(pci nvml.PciInfo) string {
	id := cString(pci.BusId[:])
	if id == "" {
		id = cString(pci.BusIdLegacy[:])
	}
	return id
}

func cString(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// nvmlProbe is an NVML session opened by the sampler.
type nvmlProbe struct {
	lib     nvml.Interface
	v2      bool
	devices []probeDevice
}

type probeDevice struct {
	index int
	uuid  string
	dev   nvml.Device
}

// openProbe initializes NVML and opens every device it can; the caller
// closes the probe, which shuts NVML down.
func openProbe(lib nvml.Interface) (probe, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, errors.New(initReason(ret))
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		lib.Shutdown()
		return nil, fmt.Errorf("NVML could not count the GPUs: %v", ret)
	}
	p := &nvmlProbe{lib: lib, v2: hasMemoryV2(lib)}
	for i := range n {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			continue
		}
		uuid, _ := dev.GetUUID()
		p.devices = append(p.devices, probeDevice{index: i, uuid: uuid, dev: dev})
	}
	return p, nil
}

// sample reads every device; a value a device fails to report stays zero.
func (p *nvmlProbe) sample(at time.Time) []Metrics {
	out := make([]Metrics, 0, len(p.devices))
	for _, d := range p.devices {
		m := Metrics{Index: d.index, UUID: d.uuid, At: at}
		if u, ret := d.dev.GetUtilizationRates(); ret == nvml.SUCCESS {
			m.UtilizationGPU, m.UtilizationMemory = u.Gpu, u.Memory
		}
		if total, used, ret := memoryInfo(d.dev, p.v2); ret == nvml.SUCCESS {
			m.MemoryTotal, m.MemoryUsed = total, used
		}
		if t, ret := d.dev.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
			m.TemperatureC = t
		}
		if mw, ret := d.dev.GetPowerUsage(); ret == nvml.SUCCESS {
			m.PowerW = float64(mw) / 1000
		}
		if mw, ret := d.dev.GetEnforcedPowerLimit(); ret == nvml.SUCCESS {
			m.PowerLimitW = float64(mw) / 1000
		}
		out = append(out, m)
	}
	return out
}

func (p *nvmlProbe) close() {
	p.lib.Shutdown()
}
