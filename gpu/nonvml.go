//go:build !cgo

package gpu

import "time"

// NVML reports whether this binary can use GPUs: built without cgo, it
// cannot load NVML and runs CPU instances only.
const NVML = false

// noNVMLReason is the Inventory.Reason of a binary built without cgo:
// go-nvml needs cgo to load libnvidia-ml.so.1.
const noNVMLReason = "built without NVML (CGO_ENABLED=0)"

// Discover reports that this binary cannot use GPUs: it was built without
// cgo, so without NVML.
func Discover() Inventory {
	return Inventory{Reason: noNVMLReason}
}

// NewSampler returns a sampler that samples nothing: this binary was built
// without NVML. Its Run returns at once.
func NewSampler(interval time.Duration) *Sampler {
	return newSampler(nil, interval)
}

// Simulated has no simulated GPUs to offer without cgo: they come from
// go-nvml's mocks, which need the NVML package.
func Simulated(n int, interval time.Duration) (Inventory, *Sampler) {
	return Inventory{Reason: noNVMLReason + "; --simulate-gpus needs a cgo build"}, NewSampler(interval)
}
