//go:build cgo

package gpu

import (
	"reflect"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

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
