//go:build !cgo

package gpu

import (
	"context"
	"reflect"
	"testing"
	"time"
)

func TestDiscoverWithoutCgo(t *testing.T) {
	want := Inventory{Reason: "built without NVML (CGO_ENABLED=0)"}
	if got := Discover(); !reflect.DeepEqual(got, want) {
		t.Errorf("Discover() = %+v, want %+v", got, want)
	}
	s := NewSampler(time.Millisecond)
	if err := s.Run(context.Background()); err != nil {
		t.Errorf("Run = %v, want nil at once", err)
	}
	if got := s.Latest(); got != nil {
		t.Errorf("Latest = %v, want nil", got)
	}
}
