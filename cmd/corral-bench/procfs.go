package main

import (
	"bytes"
	"context"
	"errors"
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

// cpuSnapshot is the CPU time (user plus system) each thread of some
// processes had used when read: per process, thread id → time. It comes
// from /proc/PID/task/TID/schedstat, the scheduler's own count in
// nanoseconds; /proc/PID/stat gives the same total in 10 ms ticks,
// which a measurement of a few streams cannot resolve. Where schedstat
// is missing (a kernel without CONFIG_SCHED_INFO) a process's stat
// total stands in, as thread statTID.
type cpuSnapshot []map[int]time.Duration

// statTID is the pseudo-thread holding a process's /proc/PID/stat total.
const statTID = -1

func readCPU(pids []int) (cpuSnapshot, error) {
	out := make(cpuSnapshot, len(pids))
	for j, pid := range pids {
		m, err := threadCPU(pid)
		if err != nil {
			return nil, err
		}
		out[j] = m
	}
	return out, nil
}

// since is what each process used between s0 and s: the threads read
// both times, plus those started meanwhile. A thread that ended meanwhile
// takes its time with it (the gateway's, the simulator's and nginx's
// threads live as long as the process).
func (s cpuSnapshot) since(s0 cpuSnapshot) []time.Duration {
	out := make([]time.Duration, len(s))
	for j, threads := range s {
		for tid, t := range threads {
			out[j] += t - s0[j][tid] // a new thread: 0 before
		}
	}
	return out
}

// threadCPU reads one process's threads' CPU time; see cpuSnapshot.
func threadCPU(pid int) (map[int]time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	m := make(map[int]time.Duration, len(tasks))
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
		if errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", pid, tid)); err == nil {
				// The thread is there, its schedstat not: count in ticks.
				total, err := statCPU(pid)
				if err != nil {
					return nil, err
				}
				return map[int]time.Duration{statTID: total}, nil
			}
			continue // the thread ended since the listing
		}
		if err != nil {
			return nil, err
		}
		f, _, _ := strings.Cut(string(b), " ")
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/task/%d/schedstat: %w", pid, tid, err)
		}
		m[tid] = time.Duration(ns)
	}
	return m, nil
}

// statCPU is the user plus system CPU time a process has used so far,
// every thread counted, in 10 ms ticks.
func statCPU(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	// After "pid (comm)": state is field 3; utime 14, stime 15.
	var ticks int64
	for _, i := range []int{14, 15} {
		n, err := strconv.ParseInt(f[i-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// cpuSource says where readCPU's figures come from on this machine.
func cpuSource() string {
	if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/schedstat"); err == nil {
		return "schedstat"
	}
	return "stat"
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
