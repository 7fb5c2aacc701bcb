package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"corral/engine/store"
)

// fakeDocker is an in-memory Docker for the reconciler's decisions; the
// real engine is exercised by the Docker integration tests.
type fakeDocker struct {
	mu       sync.Mutex
	ctrs     map[string]*ctr // by ID
	images   map[string]bool
	pullErr  error
	nextID   int
	calls    []string
	conflict map[string]bool // names taken by containers we do not manage
	volumes  map[string]map[string]string
	networks map[string]map[string]string
}

var _ docker = (*fakeDocker)(nil)

func newFake() *fakeDocker {
	return &fakeDocker{ctrs: map[string]*ctr{}, images: map[string]bool{}, conflict: map[string]bool{},
		volumes: map[string]map[string]string{}, networks: map[string]map[string]string{}}
}

func (f *fakeDocker) record(s string) { f.calls = append(f.calls, s) }

func (f *fakeDocker) Ping(context.Context) error                { return nil }
func (f *fakeDocker) DesktopLike(context.Context) bool          { return false }
func (f *fakeDocker) ConnectSelf(context.Context, string) error { return nil }
func (f *fakeDocker) Close() error                              { return nil }
func (f *fakeDocker) EnsureNetwork(_ context.Context, name string, labels map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.networks[name]; !ok {
		f.networks[name] = labels
	}
	return nil
}

func (f *fakeDocker) EnsureVolume(_ context.Context, name string, labels map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.volumes[name]; !ok {
		f.volumes[name] = labels
	}
	return nil
}

func (f *fakeDocker) VolumeLabels(_ context.Context, name string) (map[string]string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.volumes[name]
	return l, ok, nil
}

func (f *fakeDocker) NetworkLabels(_ context.Context, name string) (map[string]string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.networks[name]
	return l, ok, nil
}

func (f *fakeDocker) Volumes(_ context.Context, ns string) ([]vol, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []vol
	for name, l := range f.volumes {
		if l[LabelNamespace] == ns {
			out = append(out, vol{Name: name, Labels: l})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeDocker) RemoveVolume(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("rm volume " + name)
	delete(f.volumes, name)
	return nil
}

func (f *fakeDocker) RemoveNetwork(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("rm network " + name)
	delete(f.networks, name)
	return nil
}
func (f *fakeDocker) NetworkGateway(context.Context, string) (string, error) { return "10.0.0.1", nil }
func (f *fakeDocker) Events(ctx context.Context, _ string) (<-chan event, <-chan error) {
	return make(chan event), make(chan error)
}

func (f *fakeDocker) List(context.Context, string) ([]ctr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ctr
	for _, c := range f.ctrs {
		out = append(out, *c)
	}
	return out, nil
}

func (f *fakeDocker) Inspect(_ context.Context, id string) (ctr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[id]
	if !ok {
		return ctr{}, cerrdefs.ErrNotFound
	}
	return *c, nil
}

func (f *fakeDocker) HasImage(_ context.Context, image string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[image], nil
}

func (f *fakeDocker) Pull(_ context.Context, image string, progress func(pullProgress)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("pull " + image)
	if f.pullErr != nil {
		return f.pullErr
	}
	progress(pullProgress{Status: "Downloading", Done: 50, Size: 100})
	f.images[image] = true
	return nil
}

func (f *fakeDocker) Create(_ context.Context, s createSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conflict[s.Name] {
		return "", cerrdefs.ErrConflict.WithMessage("name in use")
	}
	f.nextID++
	id := fmt.Sprintf("id%02d", f.nextID)
	f.ctrs[id] = &ctr{ID: id, Name: s.Name, Labels: s.Labels, Image: s.Image, Status: "created"}
	f.record("create " + s.Name)
	return id, nil
}

func (f *fakeDocker) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[id]
	c.Status, c.Running, c.IP = "running", true, "10.0.0."+id[2:]
	f.record("start " + c.Name)
	return nil
}

func (f *fakeDocker) Restart(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("restart " + f.ctrs[id].Name)
	return nil
}

func (f *fakeDocker) Remove(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("remove " + f.ctrs[id].Name)
	delete(f.ctrs, id)
	return nil
}

func (f *fakeDocker) exit(name string, code int, at time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.ctrs {
		if c.Name == name {
			c.Status, c.Running, c.ExitCode, c.FinishedAt = "exited", false, code, at
			return c.ID
		}
	}
	return ""
}

func (f *fakeDocker) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time      { return c.t }
func (c *testClock) add(d time.Duration) { c.t = c.t.Add(d) }
func quiet() *slog.Logger                { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func cpuSpecs(ns string, n int, image string) []Spec {
	var out []Spec
	for i := range n {
		out = append(out, Spec{Name: instanceName(ns, i), Index: i, GPU: cpuGPU, GPUIndex: -1, Image: image})
	}
	return out
}

func newTestEngine(f *fakeDocker, specs []Spec) (*Engine, *testClock) {
	clock := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newEngine(Config{Namespace: "t", Logger: quiet()}, f, specs)
	e.now = clock.now
	e.reach = ReachIP
	return e, clock
}

func phaseOf(e *Engine, i int) (Phase, string) {
	st := e.Status()
	return st.Instances[i].Phase, st.Instances[i].Reason
}

func TestReconcileCreatesAndPulls(t *testing.T) {
	f := newFake()
	e, _ := newTestEngine(f, cpuSpecs("t", 2, "ollama:1"))
	if _, err := e.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "pull ollama:1,create t-ollama-0,start t-ollama-0,create t-ollama-1,start t-ollama-1"
	if got := strings.Join(f.takeCalls(), ","); got != want {
		t.Fatalf("calls = %s, want %s", got, want)
	}
	for i := range 2 {
		st := e.Status().Instances[i]
		if st.Phase != PhaseStarting || st.Endpoint == "" || st.ContainerID == "" {
			t.Fatalf("instance %d = %+v", i, st)
		}
	}
	// A second pass changes nothing.
	e.reconcile(context.Background())
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("idle pass made calls %v", calls)
	}
}

func TestReconcileFailedPull(t *testing.T) {
	f := newFake()
	f.pullErr = errors.New("pull nope:1: repository does not exist")
	e, clock := newTestEngine(f, cpuSpecs("t", 1, "nope:1"))
	e.reconcile(context.Background())
	if p, r := phaseOf(e, 0); p != PhaseFailed || !strings.Contains(r, "repository does not exist") || !strings.Contains(r, "--ollama-image") {
		t.Fatalf("phase %s (%s)", p, r)
	}
	f.takeCalls()
	e.reconcile(context.Background())
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("pull retried at once: %v", calls)
	}
	clock.add(pullRetry + time.Second)
	f.pullErr = nil
	e.reconcile(context.Background())
	if p, _ := phaseOf(e, 0); p != PhaseStarting {
		t.Fatalf("after retry phase = %s", p)
	}
}

func TestReconcileCrashLoopBackoff(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	e, clock := newTestEngine(f, cpuSpecs("t", 1, "o:1"))
	ctx := context.Background()
	e.reconcile(ctx)
	f.takeCalls()

	die := func() {
		id := f.exit("t-ollama-0", 1, clock.now())
		e.recordDeath(event{Action: "die", ID: id, Name: "t-ollama-0"})
	}
	// First death: started again at once.
	die()
	if next, _ := e.reconcile(ctx); !next.IsZero() {
		t.Fatalf("first restart delayed until %s", next)
	}
	if calls := f.takeCalls(); strings.Join(calls, ",") != "start t-ollama-0" {
		t.Fatalf("calls = %v", calls)
	}
	// Second death soon after: back-off.
	clock.add(time.Second)
	die()
	next, _ := e.reconcile(ctx)
	if want := clock.now().Add(2 * time.Second); !next.Equal(want) {
		t.Fatalf("next = %s, want %s", next, want)
	}
	if p, r := phaseOf(e, 0); p != PhaseUnhealthy || !strings.Contains(r, "restarting in 2s") {
		t.Fatalf("phase %s (%s)", p, r)
	}
	clock.add(2 * time.Second)
	e.reconcile(ctx)
	// Third death: a crash loop, reported as such.
	clock.add(time.Second)
	die()
	e.reconcile(ctx)
	if p, r := phaseOf(e, 0); p != PhaseFailed || !strings.Contains(r, "crash loop: exited 3 times") || !strings.Contains(r, "exit code 1") {
		t.Fatalf("phase %s (%s)", p, r)
	}
	// Deaths age out of the window.
	clock.add(deathWindow + time.Minute)
	die()
	if next, _ := e.reconcile(ctx); !next.IsZero() {
		t.Fatalf("old deaths still count: next %s", next)
	}
}

func TestReconcileRollingWaitsForHealth(t *testing.T) {
	f := newFake()
	f.images["o:1"], f.images["o:2"] = true, true
	e, _ := newTestEngine(f, cpuSpecs("t", 2, "o:1"))
	ctx := context.Background()
	e.reconcile(ctx)
	f.takeCalls()
	// Before anything is healthy, the new spec waits for a verdict.
	e.setDesired(cpuSpecs("t", 2, "o:2"))
	e.reconcile(ctx)
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("replaced before health was known: %v", calls)
	}
	markHealthy := func(names ...string) {
		e.mu.Lock()
		for _, n := range names {
			e.setPhase(e.inst[n], PhaseHealthy, "ok")
		}
		e.mu.Unlock()
	}
	markHealthy("t-ollama-0", "t-ollama-1")
	e.reconcile(ctx)
	if got := strings.Join(f.takeCalls(), ","); got != "remove t-ollama-0,create t-ollama-0,start t-ollama-0" {
		t.Fatalf("first step = %s", got)
	}
	e.reconcile(ctx)
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("second replaced while the first is starting: %v", calls)
	}
	if _, r := phaseOf(e, 1); !strings.Contains(r, "update pending") {
		t.Fatalf("reason = %q", r)
	}
	markHealthy("t-ollama-0")
	e.reconcile(ctx)
	if got := strings.Join(f.takeCalls(), ","); got != "remove t-ollama-1,create t-ollama-1,start t-ollama-1" {
		t.Fatalf("second step = %s", got)
	}
}

func TestReconcileRemovesUndesiredAndReportsConflicts(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	e, _ := newTestEngine(f, cpuSpecs("t", 2, "o:1"))
	ctx := context.Background()
	e.reconcile(ctx)
	e.setDesired(cpuSpecs("t", 1, "o:1"))
	e.reconcile(ctx)
	calls := f.takeCalls()
	if last := calls[len(calls)-1]; last != "remove t-ollama-1" {
		t.Fatalf("calls = %v", calls)
	}

	g := newFake()
	g.images["o:1"] = true
	g.conflict["t-ollama-0"] = true
	e2, _ := newTestEngine(g, cpuSpecs("t", 1, "o:1"))
	if _, err := e2.reconcile(ctx); err == nil {
		t.Fatal("no error for a name taken by a foreign container")
	}
	if p, r := phaseOf(e2, 0); p != PhaseFailed || !strings.Contains(r, "docker rm -f t-ollama-0") {
		t.Fatalf("phase %s (%s)", p, r)
	}
}

func TestSetWeight(t *testing.T) {
	f := newFake()
	e, _ := newTestEngine(f, cpuSpecs("t", 2, "o:1"))
	if err := e.SetWeight("t-ollama-1", 3); err != nil {
		t.Fatal(err)
	}
	e.reconcile(context.Background())
	for _, r := range e.Routes().Routes {
		want := 1
		if r.Name == "t-ollama-1" {
			want = 3
		}
		if r.Weight != want {
			t.Errorf("%s weight = %d, want %d", r.Name, r.Weight, want)
		}
	}
	for _, bad := range []struct {
		name string
		w    int
	}{{"t-ollama-9", 2}, {"t-ollama-0", 0}, {"t-ollama-0", MaxWeight + 1}} {
		if err := e.SetWeight(bad.name, bad.w); err == nil {
			t.Errorf("SetWeight(%s, %d) accepted", bad.name, bad.w)
		}
	}
	// The weight is not part of the container: nothing is replaced.
	f.takeCalls()
	e.reconcile(context.Background())
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("weight change touched containers: %v", calls)
	}
}

// TestReplaceDrainsFirst: the instance leaves the routes as draining and
// the engine waits for its requests before removing the container.
func TestReplaceDrainsFirst(t *testing.T) {
	f := newFake()
	f.images["o:1"], f.images["o:2"] = true, true
	e, _ := newTestEngine(f, cpuSpecs("t", 1, "o:1"))
	var drained []string
	e.cfg.DrainWait = func(ctx context.Context, name string) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("drain wait has no deadline")
		}
		for _, r := range e.Routes().Routes {
			if r.Name == name && !r.Draining {
				t.Errorf("%s not published as draining while it drains", name)
			}
		}
		if calls := f.takeCalls(); len(calls) != 0 {
			t.Errorf("containers touched before the drain ended: %v", calls)
		}
		drained = append(drained, name)
	}
	ctx := context.Background()
	e.reconcile(ctx)
	e.mu.Lock()
	e.setPhase(e.inst["t-ollama-0"], PhaseHealthy, "ok")
	e.mu.Unlock()
	f.takeCalls()
	e.setDesired(cpuSpecs("t", 1, "o:2"))
	e.reconcile(ctx)
	if strings.Join(drained, ",") != "t-ollama-0" {
		t.Fatalf("drained %v", drained)
	}
	if got := strings.Join(f.takeCalls(), ","); got != "remove t-ollama-0,create t-ollama-0,start t-ollama-0" {
		t.Fatalf("calls after drain = %s", got)
	}
}

func TestProbeDoesNotUndoDraining(t *testing.T) {
	e, _ := newTestEngine(newFake(), cpuSpecs("t", 1, "o:1"))
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.inst["t-ollama-0"]
	e.setPhase(in, PhaseDraining, "replacing")
	if e.applyProbe(in, probeResult{version: "0.17.4"}); in.phase != PhaseDraining {
		t.Fatalf("a late probe moved a draining instance to %s", in.phase)
	}
}

// Companion containers (the chat UI and its database) start in order,
// each once what it needs is healthy; they keep out of the gateway's
// routes, are replaced at once when their spec changes, and go when no
// longer desired while the Ollama instances stay.
func TestReconcileApps(t *testing.T) {
	f := newFake()
	f.images["o:1"], f.images["db:1"], f.images["ui:1"] = true, true, true
	e, _ := newTestEngine(f, cpuSpecs("t", 1, "o:1"))
	db := Spec{Name: "t-chatui-db", Role: "chatui-db", Image: "db:1", Port: 5432, Health: "tcp", Volume: "t-chatui-db", Mount: "/var/lib/postgresql/data"}
	ui := Spec{Name: "t-chatui", Role: "chatui", Image: "ui:1", Port: 8080, Health: "/health", Volume: "t-chatui-data", Mount: "/app/backend/data",
		Env: map[string]string{"A": "1"}, After: []string{"t-chatui-db"}}
	e.SetApps([]Spec{db, ui})
	ctx := context.Background()
	e.reconcile(ctx)
	if got := strings.Join(f.takeCalls(), ","); got != "create t-ollama-0,start t-ollama-0,create t-chatui-db,start t-chatui-db" {
		t.Fatalf("first pass: %s", got)
	}
	st := e.Status()
	if len(st.Instances) != 1 || len(st.Apps) != 2 {
		t.Fatalf("status: %d instances, %d apps", len(st.Instances), len(st.Apps))
	}
	for _, a := range st.Apps {
		if a.Name == "t-chatui" && (a.Phase != PhasePending || !strings.Contains(a.Reason, "waiting for t-chatui-db")) {
			t.Fatalf("chat UI before its database is healthy: %+v", a)
		}
	}
	e.transition("t-chatui-db", PhaseHealthy, "answering")
	e.reconcile(ctx)
	if got := strings.Join(f.takeCalls(), ","); got != "create t-chatui,start t-chatui" {
		t.Fatalf("once the database is healthy: %s", got)
	}
	f.mu.Lock()
	for _, c := range f.ctrs {
		if c.Name == "t-chatui" && c.Labels[LabelRole] != "chatui" {
			t.Errorf("chat UI labels %v", c.Labels)
		}
	}
	f.mu.Unlock()
	rt := e.Routes()
	if len(rt.Routes) != 1 || rt.Routes[0].Name != "t-ollama-0" || rt.Apps["t-chatui"].URL != "http://10.0.0.03:8080" {
		t.Fatalf("routes %+v apps %+v", rt.Routes, rt.Apps)
	}

	ui.Env = map[string]string{"A": "2"}
	e.SetApps([]Spec{db, ui})
	e.reconcile(ctx)
	if got := strings.Join(f.takeCalls(), ","); got != "remove t-chatui,create t-chatui,start t-chatui" {
		t.Fatalf("changed chat UI: %s", got)
	}
	e.SetApps(nil)
	e.reconcile(ctx)
	calls := f.takeCalls()
	if len(calls) != 2 || !strings.Contains(strings.Join(calls, ","), "remove t-chatui-db") || !strings.Contains(strings.Join(calls, ","), "remove t-chatui") {
		t.Fatalf("apps no longer desired: %v", calls)
	}
	if st := e.Status(); len(st.Instances) != 1 || len(st.Apps) != 0 {
		t.Fatalf("after removing the apps: %+v", st)
	}
}

// Restart restarts in place; Recreate removes the container and the next
// pass creates a new one. Neither counts as a crash.
func TestRestartAndRecreate(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	e, _ := newTestEngine(f, cpuSpecs("t", 1, "o:1"))
	ctx := context.Background()
	e.reconcile(ctx)
	f.takeCalls()
	old := e.Status().Instances[0].ContainerID
	if err := e.Restart(ctx, "t-ollama-0"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.takeCalls(), ","); got != "restart t-ollama-0" {
		t.Fatalf("restart: %s", got)
	}
	if err := e.Recreate(ctx, "t-ollama-0"); err != nil {
		t.Fatal(err)
	}
	e.reconcile(ctx)
	if got := strings.Join(f.takeCalls(), ","); got != "remove t-ollama-0,create t-ollama-0,start t-ollama-0" {
		t.Fatalf("recreate: %s", got)
	}
	st := e.Status().Instances[0]
	if st.ContainerID == old || st.Phase != PhaseStarting {
		t.Fatalf("after recreate: %+v", st)
	}
	if err := e.Restart(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "t-ollama-0") {
		t.Fatalf("unknown name: %v", err)
	}
	e.mu.Lock()
	deaths := len(e.inst["t-ollama-0"].deaths)
	e.mu.Unlock()
	if deaths != 0 {
		t.Fatalf("%d deaths recorded for requested restarts", deaths)
	}
}

func (f *fakeDocker) Logs(_ context.Context, id string, _ int, _ bool) (io.ReadCloser, error) {
	return nil, errors.New("the fake has no logs")
}

// TestStopAndStart: a stopped instance loses its container, stays down
// through passes and across a restart of corral (the store remembers),
// does not hold back a rolling update of the others, and comes back on
// Start. Each change is an event.
func TestStopAndStart(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := newFake()
	f.images["o:1"], f.images["o:2"] = true, true
	newEng := func(image string) *Engine {
		e := newEngine(Config{Namespace: "t", Logger: quiet(), Store: st}, f, cpuSpecs("t", 2, image))
		e.reach = ReachIP
		stopped, err := loadStopped(st)
		if err != nil {
			t.Fatal(err)
		}
		e.keepStopped(stopped)
		return e
	}
	e := newEng("o:1")
	ctx := context.Background()
	e.reconcile(ctx)
	f.takeCalls()
	if err := e.Stop(ctx, "t-ollama-1"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.takeCalls(), ","); got != "remove t-ollama-1" {
		t.Fatalf("stop: %s", got)
	}
	e.reconcile(ctx)
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("a pass brought the stopped instance back: %v", calls)
	}
	if p, r := phaseOf(e, 1); p != PhaseStopped || !strings.Contains(r, "start it") {
		t.Fatalf("stopped instance: %s (%s)", p, r)
	}
	// The healthy one updates although the other is down on purpose.
	e.mu.Lock()
	e.setPhase(e.inst["t-ollama-0"], PhaseHealthy, "ok")
	e.mu.Unlock()
	if err := e.SetInstances(cpuSpecs("t", 2, "o:2")); err != nil {
		t.Fatal(err)
	}
	e.reconcile(ctx)
	if got := strings.Join(f.takeCalls(), ","); got != "remove t-ollama-0,create t-ollama-0,start t-ollama-0" {
		t.Fatalf("update with one stopped: %s", got)
	}
	// A new corral on the same store keeps it down.
	e2 := newEng("o:2")
	e2.reconcile(ctx)
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("after a restart of corral: %v", calls)
	}
	if err := e2.Start("t-ollama-1"); err != nil {
		t.Fatal(err)
	}
	e2.reconcile(ctx)
	if got := strings.Join(f.takeCalls(), ","); got != "create t-ollama-1,start t-ollama-1" {
		t.Fatalf("start: %s", got)
	}
	if names, _ := loadStopped(st); len(names) != 0 {
		t.Fatalf("still stored as stopped: %v", names)
	}
	if err := e2.Stop(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "t-ollama-0") {
		t.Fatalf("unknown name: %v", err)
	}
	var got []string
	for _, ev := range e.Events("t-ollama-1") {
		got = append(got, string(ev.From)+">"+string(ev.To))
	}
	if want := "draining>stopped,starting>draining,pending>starting"; strings.Join(got, ",") != want {
		t.Fatalf("events of t-ollama-1, newest first: %v, want %s", got, want)
	}
}

func TestEventsAreBounded(t *testing.T) {
	e, _ := newTestEngine(newFake(), cpuSpecs("t", 1, "o:1"))
	e.mu.Lock()
	for i := range eventsKept + 50 {
		e.setPhase(e.inst["t-ollama-0"], []Phase{PhaseHealthy, PhaseUnhealthy}[i%2], fmt.Sprint(i))
	}
	e.mu.Unlock()
	evs := e.Events("")
	if len(evs) != eventsKept || evs[0].Reason != fmt.Sprint(eventsKept+49) {
		t.Fatalf("%d events, newest %q", len(evs), evs[0].Reason)
	}
}

// An exit corral did not ask for is kept with its reason, for the
// overview to say after the restart healed it.
func TestLastExit(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	e, clock := newTestEngine(f, cpuSpecs("t", 1, "o:1"))
	ctx := context.Background()
	e.reconcile(ctx)
	if x := e.Status().Instances[0].LastExit; x != nil {
		t.Fatalf("a fresh instance has an exit: %+v", x)
	}
	id := f.exit("t-ollama-0", 137, clock.now())
	e.recordDeath(event{Action: "die", ID: id, Name: "t-ollama-0"})
	e.reconcile(ctx)
	x := e.Status().Instances[0].LastExit
	if x == nil || x.Reason != "exit code 137 (killed, SIGKILL: docker kill, or the kernel out of memory)" || !x.At.Equal(clock.now()) {
		t.Fatalf("last exit = %+v", x)
	}
}
