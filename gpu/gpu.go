// Package gpu finds the host's NVIDIA GPUs and samples their load through
// NVML (github.com/NVIDIA/go-nvml), which it loads at run time from the
// driver's libnvidia-ml.so.1.
//
// A host without the NVIDIA driver is normal: Discover then returns an
// Inventory with no devices and a Reason that says why, and corral runs in
// CPU mode. Nothing is called after a failed NVML Init. A binary built with
// CGO_ENABLED=0 has no NVML at all: Discover reports that as the Reason and
// the Sampler samples nothing.
//
// Only this package imports go-nvml; its types do not appear in the API.
package gpu

import "time"

// Device is one GPU as discovered at start.
type Device struct {
	// Index is the NVML index, the one docker --gpus device=N and
	// nvidia-smi use.
	Index int    `json:"index"`
	UUID  string `json:"uuid"`
	Name  string `json:"name"`
	// MemoryTotal and MemoryUsed are in bytes. Used counts everything that
	// is not free, memory the driver reserves included.
	MemoryTotal uint64 `json:"memory_total_bytes"`
	MemoryUsed  uint64 `json:"memory_used_bytes"`
	PCIBusID    string `json:"pci_bus_id,omitempty"`
}

// Inventory is the result of discovery.
type Inventory struct {
	Devices       []Device `json:"devices"`
	DriverVersion string   `json:"driver_version,omitempty"`
	// CUDAVersion is the highest CUDA version the driver supports, like "12.4".
	CUDAVersion string `json:"cuda_version,omitempty"`
	// Reason says why no GPUs are available when Devices is empty: why NVML
	// could not start and what to do about it, or that the binary was built
	// without NVML.
	Reason string `json:"reason,omitempty"`
	// Warnings lists what went wrong while querying devices that are
	// otherwise usable (a field left empty), or that had to be skipped.
	Warnings []string `json:"warnings,omitempty"`
}

// Metrics is one sample of one device. A value the device does not report
// (power on many consumer cards, for one) is zero.
type Metrics struct {
	Index             int    `json:"index"`
	UUID              string `json:"uuid"`
	UtilizationGPU    uint32 `json:"utilization_gpu_percent"`
	UtilizationMemory uint32 `json:"utilization_memory_percent"`
	// MemoryUsed and MemoryTotal are in bytes, as in Device.
	MemoryUsed   uint64    `json:"memory_used_bytes"`
	MemoryTotal  uint64    `json:"memory_total_bytes"`
	TemperatureC uint32    `json:"temperature_c"`
	PowerW       float64   `json:"power_w"`
	PowerLimitW  float64   `json:"power_limit_w"`
	At           time.Time `json:"at"`
}
