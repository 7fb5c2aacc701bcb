package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// cpuPlan places the benchmark's processes on CPUs. Split gives the proxy
// under test (the gateway, then nginx alike) a CPU of its own and leaves
// the others to the load client and the simulator, as on a GPU server,
// where the model's work runs on the GPU and the proxy does not compete
// with it for cores. Shared lets every process run anywhere: on a small
// machine the proxy then takes its CPU from the load client and the
// simulator, so throughput measures that CPU more than the proxy.
type cpuPlan struct {
	mode  string      // cpusSplit or cpusShared
	all   unix.CPUSet // where this process could run before
	load  unix.CPUSet
	proxy unix.CPUSet
	note  string // why split fell back to shared
	awake bool   // a spinner keeps the proxy's CPU from idling (--awake)
}

const (
	cpusSplit  = "split"
	cpusShared = "shared"
)

func planCPUs(mode string) (cpuPlan, error) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return cpuPlan{}, fmt.Errorf("reading this process's CPU affinity: %w", err)
	}
	p := cpuPlan{mode: mode, all: all, load: all, proxy: all}
	if mode == cpusShared {
		return p, nil
	}
	cpus := cpuIDs(all)
	if len(cpus) < 2 {
		return p.shared("one CPU: nothing to split"), nil
	}
	last := cpus[len(cpus)-1]
	p.load.Clear(last)
	p.proxy.Zero()
	p.proxy.Set(last)
	return p, nil
}

func (p cpuPlan) split() bool { return p.mode == cpusSplit }

// shared is the plan turned to shared, saying why.
func (p cpuPlan) shared(note string) cpuPlan {
	p.mode, p.load, p.proxy, p.note = cpusShared, p.all, p.all, note
	return p
}

// proxyCPUs is how many CPUs the proxy may use: the gateway's GOMAXPROCS.
func (p cpuPlan) proxyCPUs() int { return p.proxy.Count() }

// describe says where everything runs, for the report's header.
func (p cpuPlan) describe() string {
	if !p.split() {
		s := fmt.Sprintf("shared: the load client, the simulator and the proxy all run on CPUs %s", cpuList(p.load))
		if p.note != "" {
			s += " (" + p.note + ")"
		}
		return s
	}
	s := fmt.Sprintf("split: the load client and the simulator on CPU %s, the proxy measured (gateway or nginx) on CPU %s", cpuList(p.load), cpuList(p.proxy))
	if p.awake {
		s += "; a SCHED_IDLE spinner keeps CPU " + cpuList(p.proxy) + " from idling (--awake)"
	}
	return s
}

// pinSelf moves every thread of this process to the load CPUs; threads
// started later inherit it from the thread that starts them, and so do
// children (the simulator). If that fails, the threads it did move get
// their CPUs back.
func (p cpuPlan) pinSelf() error {
	if !p.split() {
		return nil
	}
	if err := setAllThreads(p.load); err != nil {
		setAllThreads(p.all)
		return err
	}
	return nil
}

// unpinSelf gives every thread back the CPUs it had: the process may go
// on (a test run again) and must find them all.
func (p cpuPlan) unpinSelf() error {
	if !p.split() {
		return nil
	}
	return setAllThreads(p.all)
}

func setAllThreads(set unix.CPUSet) error {
	if err := eachThread(0, func(tid int) error { return unix.SchedSetaffinity(tid, &set) }); err != nil {
		return fmt.Errorf("binding to CPUs %s: %w", cpuList(set), err)
	}
	return nil
}

// eachThread calls fn for every thread of process pid (0: this one). A
// thread may start while the list is read: it goes again until a pass
// finds none new. A thread gone meanwhile (ESRCH) is passed over.
func eachThread(pid int, fn func(tid int) error) error {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	done := map[int]bool{}
	for {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		fresh := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := fn(tid); err != nil && err != unix.ESRCH {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
			done[tid] = true
			fresh++
		}
		if fresh == 0 {
			return nil
		}
	}
}

// onProxyCPUs runs start, which starts a child process, on a thread bound
// to the proxy's CPUs: the child inherits them from its first
// instruction, so Go sizes GOMAXPROCS by them and nginx's workers, forked
// later, inherit them too.
func (p cpuPlan) onProxyCPUs(start func() error) error {
	if !p.split() {
		return start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.SchedSetaffinity(0, &p.proxy); err != nil {
		return fmt.Errorf("binding to CPU %s: %w", cpuList(p.proxy), err)
	}
	// The thread goes back to the load CPUs before others may run on it.
	defer unix.SchedSetaffinity(0, &p.load)
	return start()
}

// cpusOf reads where a process (its main thread) may run, as the report
// states it: what was observed, not what was asked for.
func cpusOf(pid int) string {
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &s); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return cpuList(s)
}

func cpuIDs(s unix.CPUSet) []int {
	var ids []int
	for i := 0; i < len(s)*64; i++ {
		if s.IsSet(i) {
			ids = append(ids, i)
		}
	}
	return ids
}

// cpuList writes a set as Linux does: "0-2,5".
func cpuList(s unix.CPUSet) string {
	ids := cpuIDs(s)
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ids[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// startSpinner runs `corral-bench spin` on the proxy's CPU (--awake).
func startSpinner(ctx context.Context, dir string, p cpuPlan) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var c *child
	err = p.onProxyCPUs(func() (err error) {
		c, err = startChild(ctx, dir, "spin", os.Environ(), self, "spin")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("--awake: %w", err)
	}
	return c, nil
}

// spin keeps its CPU busy at the lowest priority there is, until ctx
// ends. A SCHED_IDLE thread runs only when nothing else wants the CPU and
// yields to a waking proxy at once, so the CPU never idles, and never
// halts as an idle vCPU does, while the proxy loses nothing to it.
// Threads the runtime starts later inherit the policy from the one that
// starts them.
func spin(ctx context.Context) error {
	runtime.LockOSThread()
	idle := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
	if err := eachThread(0, func(tid int) error { return unix.SchedSetAttr(tid, &idle, 0) }); err != nil {
		return fmt.Errorf("spin: SCHED_IDLE: %w", err)
	}
	// An atomic counter gives the loop an effect the compiler must keep.
	var n atomic.Uint64
	for ctx.Err() == nil {
		for i := 0; i < 1<<20; i++ {
			n.Add(1)
		}
	}
	return nil
}

// spinsIdle reports whether every thread of process pid runs SCHED_IDLE.
// The spinner sets its policy right after it starts: wait for that.
func spinsIdle(pid int) bool {
	for range 100 {
		err := eachThread(pid, func(tid int) error {
			a, err := unix.SchedGetAttr(tid, 0)
			if err == nil && a.Policy != unix.SCHED_IDLE {
				err = errNotIdle
			}
			return err
		})
		switch {
		case err == nil:
			return true
		case errors.Is(err, fs.ErrNotExist):
			return false // the spinner is gone
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

var errNotIdle = errors.New("not SCHED_IDLE")
