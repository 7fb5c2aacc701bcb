package ui

import (
	"fmt"
	"strings"
	"time"

	"corral/engine/keys"
)

// LimitsText writes a key's limits for a list, such as "rpm=60 tpd=100000
// weight=4 batch queue=10 wait=30s": the caps set and the queue settings
// that are not the default.
func LimitsText(l keys.Limits) string {
	var parts []string
	for _, f := range []struct {
		name string
		v    int64
	}{{"rpm", l.RequestsPerMinute}, {"tpm", l.TokensPerMinute}, {"tpd", l.TokensPerDay}, {"tpmo", l.TokensPerMonth}} {
		if f.v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", f.name, f.v))
		}
	}
	if l.Weight > 1 {
		parts = append(parts, fmt.Sprintf("weight=%d", l.Weight))
	}
	if l.Batch {
		parts = append(parts, "batch")
	}
	if l.MaxQueue > 0 {
		parts = append(parts, fmt.Sprintf("queue=%d", l.MaxQueue))
	}
	if l.MaxWaitSeconds > 0 {
		parts = append(parts, "wait="+ShortDuration(time.Duration(l.MaxWaitSeconds)*time.Second))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// ShortDuration writes d without trailing zero units: 2m, not 2m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
