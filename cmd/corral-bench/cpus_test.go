//go:build linux

package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestCPUList(t *testing.T) {
	for _, tc := range []struct {
		ids  []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 1, 2, 5}, "0-2,5"},
		{[]int{1, 3, 4, 5, 7, 64, 65}, "1,3-5,7,64-65"},
	} {
		var s unix.CPUSet
		for _, id := range tc.ids {
			s.Set(id)
		}
		if got := cpuList(s); got != tc.want {
			t.Errorf("cpuList(%v) = %q, want %q", tc.ids, got, tc.want)
		}
	}
}

func TestPlanCPUs(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	shared, err := planCPUs(cpusShared)
	if err != nil {
		t.Fatal(err)
	}
	if shared.split() || shared.load != all || shared.proxy != all {
		t.Errorf("shared plan %+v: want everything on %s", shared, cpuList(all))
	}
	split, err := planCPUs(cpusSplit)
	if err != nil {
		t.Fatal(err)
	}
	if all.Count() < 2 {
		if split.split() || split.note == "" {
			t.Errorf("one CPU: want shared with a note, got %+v", split)
		}
		return
	}
	if !split.split() || split.proxy.Count() != 1 || split.load.Count() != all.Count()-1 {
		t.Fatalf("split plan: proxy %s, load %s of %s", cpuList(split.proxy), cpuList(split.load), cpuList(all))
	}
	ids := cpuIDs(all)
	if !split.proxy.IsSet(ids[len(ids)-1]) || split.load.IsSet(ids[len(ids)-1]) {
		t.Errorf("split plan: proxy %s, load %s: want the proxy on the last CPU alone", cpuList(split.proxy), cpuList(split.load))
	}
}
