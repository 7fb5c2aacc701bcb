package gpu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Select parses a --gpus value against an inventory and returns the chosen
// devices in index order. The value is "all" (every device; none on a host
// without GPUs), "none" (CPU mode), or a comma-separated list of indexes and
// UUIDs ("0,2", "GPU-5c3e…"). Its error is one line that says what exists.
func Select(inv Inventory, spec string) ([]Device, error) {
	value := strings.TrimSpace(spec)
	switch strings.ToLower(value) {
	case "all":
		return slices.Clone(inv.Devices), nil
	case "none":
		return nil, nil
	case "":
		return nil, fmt.Errorf("--gpus %q: empty value; use all, none, or GPU indexes or UUIDs like 0,2", spec)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("--gpus %s: %s", value, fmt.Sprintf(format, args...))
	}

	var picked []Device
	for item := range strings.SplitSeq(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fail("empty item in the list")
		}
		var (
			d     Device
			found bool
		)
		if isIndex(item) {
			i, err := strconv.Atoi(item)
			if err != nil {
				i = -1 // too large to be anyone's index
			}
			d, found = deviceBy(inv, func(d Device) bool { return d.Index == i })
			if !found && len(inv.Devices) > 0 {
				return nil, fail("no GPU with index %s (this host has %s)", item, describe(inv.Devices))
			}
		} else if len(item) > 4 && strings.EqualFold(item[:4], "GPU-") {
			d, found = deviceBy(inv, func(d Device) bool { return strings.EqualFold(d.UUID, item) })
			if !found && len(inv.Devices) > 0 {
				return nil, fail("no GPU with UUID %s (this host has %s)", item, describe(inv.Devices))
			}
		} else {
			return nil, fail("%q is not a GPU index or UUID; use all, none, or a list like 0,2", item)
		}
		if !found {
			if inv.Reason != "" {
				return nil, fail("no GPUs found (%s); use --gpus none to run in CPU mode", inv.Reason)
			}
			return nil, fail("no GPUs found; use --gpus none to run in CPU mode")
		}
		if slices.ContainsFunc(picked, func(p Device) bool { return p.Index == d.Index }) {
			return nil, fail("GPU %d is listed twice", d.Index)
		}
		picked = append(picked, d)
	}
	slices.SortFunc(picked, func(a, b Device) int { return a.Index - b.Index })
	return picked, nil
}

func isIndex(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func deviceBy(inv Inventory, match func(Device) bool) (Device, bool) {
	i := slices.IndexFunc(inv.Devices, match)
	if i < 0 {
		return Device{}, false
	}
	return inv.Devices[i], true
}

// describe names the devices' indexes compactly: "GPU 0", "GPUs 0-3,5".
func describe(devices []Device) string {
	idx := make([]int, 0, len(devices))
	for _, d := range devices {
		idx = append(idx, d.Index)
	}
	slices.Sort(idx)
	if len(idx) == 1 {
		return fmt.Sprintf("GPU %d", idx[0])
	}
	var b strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", idx[i], idx[j])
		} else {
			fmt.Fprintf(&b, "%d", idx[i])
		}
		i = j + 1
	}
	return "GPUs " + b.String()
}
