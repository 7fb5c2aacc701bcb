package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of utime and stime in /proc/PID/stat. It is 100 on
// every Linux ABI Go supports (USER_HZ, not the kernel's HZ).
const userHZ = 100

// cpuTimes are the user plus system CPU time each process has used so
// far, every thread counted.
func cpuTimes(pids []int) ([]time.Duration, error) {
	out := make([]time.Duration, len(pids))
	for j, pid := range pids {
		f, err := statFields(pid)
		if err != nil {
			return nil, err
		}
		// After "pid (comm)": state is field 3; utime 14, stime 15.
		var ticks int64
		for _, i := range []int{14, 15} {
			n, err := strconv.ParseInt(f[i-3], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
			ticks += n
		}
		out[j] = time.Duration(ticks) * time.Second / userHZ
	}
	return out, nil
}

// statFields are the fields of /proc/PID/stat after "pid (comm)".
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// memory is what /proc/PID/status says of a process's resident memory,
// in bytes: VmRSS now, and VmHWM, its peak.
type memory struct {
	RSS, HWM uint64
}

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	return m, nil
}

// sumMemory adds up the processes' memory (nginx: master and workers).
func sumMemory(pids []int) (memory, error) {
	var sum memory
	for _, pid := range pids {
		m, err := readMemory(pid)
		if err != nil {
			return memory{}, err
		}
		sum.RSS += m.RSS
		sum.HWM += m.HWM
	}
	return sum, nil
}

// childPIDs lists the processes whose parent is ppid.
func childPIDs(ppid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		f, err := statFields(pid)
		if err != nil {
			continue
		}
		if p, _ := strconv.Atoi(f[1]); p == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// rssSampler reads the processes' VmRSS every interval and keeps the
// largest sum, until stopped.
type rssSampler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	max    uint64
}

func sampleRSS(pids []int, every time.Duration) *rssSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &rssSampler{cancel: cancel}
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if m, err := sumMemory(pids); err == nil {
				s.max = max(s.max, m.RSS)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return s
}

// stop ends the sampling and returns the largest RSS seen.
func (s *rssSampler) stop() uint64 {
	s.cancel()
	s.wg.Wait()
	return s.max
}

// loadAverage is the first field of /proc/loadavg: runnable tasks, averaged
// over a minute. Other work on the machine shows here.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f, _, _ := strings.Cut(string(b), " ")
	return f
}
