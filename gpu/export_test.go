//go:build cgo

package gpu

// DiscoverWith lets the external tests run discovery over a mock NVML.
var DiscoverWith = discover
