package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"corral/engine/store"
)

// ownedEngine is a test engine whose store owns namespace "t".
func ownedEngine(t *testing.T, f *fakeDocker, specs []Spec, takeOver bool) (*Engine, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, _ := newTestEngine(f, specs)
	e.cfg.Store = st
	e.takeOver = takeOver
	return e, st
}

// addCtr puts a running container in the fake, as another corral (or an
// older one) left it.
func addCtr(f *fakeDocker, id string, s Spec, labels map[string]string) {
	l := map[string]string{LabelManaged: "true", LabelNamespace: "t", LabelRole: roleOf(s), LabelSpecHash: specHash(s, false)}
	for k, v := range labels {
		l[k] = v
	}
	f.ctrs[id] = &ctr{ID: id, Name: s.Name, Labels: l, Image: s.Image, Status: "running", Running: true, IP: "10.0.0.9"}
}

func TestClaimFreshNamespaceLabelsEverything(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	e, st := ownedEngine(t, f, cpuSpecs("t", 1, "o:1"), false)
	ctx := context.Background()
	if err := e.claimNamespace(ctx); err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs(filepath.Dir(st.Path()))
	claim := f.volumes["t-owner"]
	if claim[LabelOwner] != st.ID() || claim[LabelDataDir] != dir || claim[LabelNamespace] != "t" {
		t.Fatalf("claim labels = %v", claim)
	}
	if _, err := e.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.ctrs {
		if c.Labels[LabelOwner] != st.ID() || c.Labels[LabelDataDir] != dir {
			t.Fatalf("container labels = %v", c.Labels)
		}
	}
}

// TestClaimRefusesAnotherOwner: a namespace another store owns is left
// exactly as it is, and the error names that store's data dir.
func TestClaimRefusesAnotherOwner(t *testing.T) {
	for _, record := range []bool{true, false} {
		name := "by its record"
		if !record {
			name = "by labels alone (record pruned)"
		}
		t.Run(name, func(t *testing.T) {
			f := newFake()
			other := map[string]string{LabelOwner: "other-id", LabelDataDir: "/srv/other"}
			if record {
				f.volumes["t-owner"] = map[string]string{LabelNamespace: "t", LabelOwner: "other-id", LabelDataDir: "/srv/other"}
			}
			specs := cpuSpecs("t", 1, "o:1")
			addCtr(f, "theirs", specs[0], other)
			e, _ := ownedEngine(t, f, specs, false)
			err := e.claimNamespace(context.Background())
			var oe *OwnerError
			if !errors.As(err, &oe) || oe.DataDir != "/srv/other" || oe.Lost {
				t.Fatalf("claim: %v, want OwnerError naming /srv/other", err)
			}
			for _, want := range []string{`namespace "t"`, "data dir /srv/other", "--take-over", "CORRAL_TAKE_OVER", "--namespace"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
			if calls := f.takeCalls(); len(calls) != 0 {
				t.Fatalf("a refused claim made calls %v", calls)
			}
			if f.volumes["t-owner"][LabelOwner] == e.cfg.Store.ID() {
				t.Fatal("the record was taken")
			}
		})
	}
}

// TestUnlabelledContainersAdopted: containers of a corral from before
// ownership are ours, kept as they are (same container, no restart).
func TestUnlabelledContainersAdopted(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	specs := cpuSpecs("t", 2, "o:1")
	addCtr(f, "old0", specs[0], nil)
	addCtr(f, "old1", specs[1], nil)
	f.networks["t"] = map[string]string{LabelManaged: "true", LabelNamespace: "t"}
	e, st := ownedEngine(t, f, specs, false)
	ctx := context.Background()
	if err := e.claimNamespace(ctx); err != nil {
		t.Fatal(err)
	}
	if f.volumes["t-owner"][LabelOwner] != st.ID() {
		t.Fatalf("claim = %v", f.volumes["t-owner"])
	}
	if _, err := e.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("adopting made calls %v", calls)
	}
	if got := ids(e.Status()); strings.Join(got, ",") != "old0,old1" {
		t.Fatalf("containers = %v", got)
	}
}

func ids(st Status) []string {
	var out []string
	for _, in := range st.Instances {
		out = append(out, in.ContainerID)
	}
	return out
}

// TestReconcileLeavesForeignContainers: another store's container is not
// removed though not desired, and one with a desired name is not replaced
// or started: the instance says whose it is.
func TestReconcileLeavesForeignContainers(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	specs := cpuSpecs("t", 2, "o:1")
	e, _ := ownedEngine(t, f, specs[:1], false)
	ctx := context.Background()
	if err := e.claimNamespace(ctx); err != nil {
		t.Fatal(err)
	}
	other := map[string]string{LabelOwner: "other-id", LabelDataDir: "/srv/other"}
	stale := specs[0]
	stale.Image = "o:0" // outdated: ours would be replaced
	addCtr(f, "theirs0", stale, other)
	addCtr(f, "theirs1", specs[1], other) // not desired: ours would be removed
	f.ctrs["theirs1"].Status, f.ctrs["theirs1"].Running = "exited", false
	if _, err := e.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("calls on another's containers: %v", calls)
	}
	if p, r := phaseOf(e, 0); p != PhaseFailed || !strings.Contains(r, "data dir /srv/other") {
		t.Fatalf("phase %s (%s)", p, r)
	}
}

// TestTakeOver: with take-over the record moves, the other store's
// containers are adopted as they are, and the adoption is kept so a later
// start needs no --take-over. The corral that was taken over stops at its
// next pass.
func TestTakeOver(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	specs := cpuSpecs("t", 1, "o:1")
	a, stA := ownedEngine(t, f, specs, false)
	ctx := context.Background()
	if err := a.claimNamespace(ctx); err != nil {
		t.Fatal(err)
	}
	a.reconcile(ctx)
	before := ids(a.Status())
	f.takeCalls()

	b, stB := ownedEngine(t, f, specs, true)
	if err := b.claimNamespace(ctx); err != nil {
		t.Fatal(err)
	}
	if f.volumes["t-owner"][LabelOwner] != stB.ID() {
		t.Fatalf("claim = %v", f.volumes["t-owner"])
	}
	if adopted, _ := stB.AdoptedOwners(); len(adopted) != 1 || adopted[0] != stA.ID() {
		t.Fatalf("adopted = %v, want [%s]", adopted, stA.ID())
	}
	if _, err := b.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(b.Status()); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Fatalf("taken-over containers = %v, want %v", got, before)
	}
	if calls := f.takeCalls(); strings.Join(calls, ",") != "rm volume t-owner" {
		t.Fatalf("take-over calls = %v, want only the record replaced", calls)
	}
	// A's next pass: it stops, touching nothing.
	_, err := a.reconcile(ctx)
	var oe *OwnerError
	if !errors.As(err, &oe) || !oe.Lost || !strings.Contains(err.Error(), "was taken over") {
		t.Fatalf("A's pass: %v, want a lost OwnerError", err)
	}
	// B again, without take-over: its own.
	b2, _ := newTestEngine(f, specs)
	b2.cfg.Store = stB
	if err := b2.claimNamespace(ctx); err != nil {
		t.Fatalf("second start of the new owner: %v", err)
	}
}

// TestClaimRemadeWhenPruned: a record removed while corral runs is made
// again on the next pass.
func TestClaimRemadeWhenPruned(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	e, st := ownedEngine(t, f, cpuSpecs("t", 1, "o:1"), false)
	ctx := context.Background()
	e.claimNamespace(ctx)
	e.reconcile(ctx)
	delete(f.volumes, "t-owner")
	if _, err := e.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if f.volumes["t-owner"][LabelOwner] != st.ID() {
		t.Fatalf("claim = %v", f.volumes["t-owner"])
	}
}

func TestDownPlan(t *testing.T) {
	f := newFake()
	f.images["o:1"] = true
	specs := cpuSpecs("t", 2, "o:1")
	e, st := ownedEngine(t, f, specs, false)
	ctx := context.Background()
	e.claimNamespace(ctx)
	own := e.owner()
	f.networks["t"] = own.labels(map[string]string{LabelManaged: "true", LabelNamespace: "t"})
	f.volumes["t-models"] = own.labels(map[string]string{LabelManaged: "true", LabelNamespace: "t"})
	f.volumes["t-chatui-data"] = map[string]string{LabelManaged: "true", LabelNamespace: "t"} // before ownership: ours
	f.volumes["t-x"] = map[string]string{LabelNamespace: "t", LabelOwner: "other-id", LabelDataDir: "/srv/other"}
	addCtr(f, "mine", specs[0], map[string]string{LabelOwner: st.ID()})
	addCtr(f, "legacy", specs[1], nil)
	addCtr(f, "theirs", Spec{Name: "t-ollama-9", Image: "o:1"}, map[string]string{LabelOwner: "other-id", LabelDataDir: "/srv/other"})
	cfg := e.cfg
	cfg.Store = st

	// Refused at the confirmation: nothing changes.
	stop := errors.New("no")
	plan, err := down(ctx, f, cfg, true, func(DownPlan) error { return stop })
	if !errors.Is(err, stop) || len(f.takeCalls()) != 0 {
		t.Fatalf("refused down: %v", err)
	}
	if got := strings.Join(plan.Volumes, ","); got != "t-chatui-data,t-models" {
		t.Fatalf("volumes = %s", got)
	}

	plan, err = down(ctx, f, cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(plan.Containers, ","); got != "t-ollama-0,t-ollama-1" {
		t.Fatalf("containers = %s", got)
	}
	if plan.Network != "t" || plan.Claim != "t-owner" || len(plan.Volumes) != 0 || strings.Join(plan.Kept, ",") != "t-chatui-data,t-models" {
		t.Fatalf("plan = %+v", plan)
	}
	if got := strings.Join(plan.Foreign, "; "); got != "container t-ollama-9 (data dir /srv/other); volume t-x (data dir /srv/other)" {
		t.Fatalf("foreign = %s", got)
	}
	if _, ok := f.ctrs["theirs"]; !ok || len(f.ctrs) != 1 {
		t.Fatalf("containers left: %v", f.ctrs)
	}
	if _, ok := f.volumes["t-owner"]; ok {
		t.Fatal("the record stayed")
	}
	if _, ok := f.volumes["t-models"]; !ok {
		t.Fatal("the models volume went without volumes")
	}
	if _, ok := f.networks["t"]; ok {
		t.Fatal("the network stayed")
	}
}

// TestDownAfterTakenOver: a store whose namespace another took over
// removes only what carries its own ID.
func TestDownAfterTakenOver(t *testing.T) {
	f := newFake()
	specs := cpuSpecs("t", 2, "o:1")
	e, st := ownedEngine(t, f, specs, false)
	f.volumes["t-owner"] = map[string]string{LabelNamespace: "t", LabelOwner: "new-owner", LabelDataDir: "/srv/new"}
	addCtr(f, "mine", specs[0], map[string]string{LabelOwner: st.ID()})
	addCtr(f, "legacy", specs[1], nil)
	plan, err := down(context.Background(), f, e.cfg, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(plan.Containers, ",") != "t-ollama-0" || plan.Claim != "" {
		t.Fatalf("plan = %+v", plan)
	}
	if _, ok := f.volumes["t-owner"]; !ok {
		t.Fatal("another's record removed")
	}
}
