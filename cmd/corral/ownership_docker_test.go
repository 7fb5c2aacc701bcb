package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"corral/cmd/ollama-sim/simimage"
	"corral/engine"
	"corral/engine/enginetest"
	"corral/engine/store"
)

// startedAt is when each container last started: a container that was
// restarted or recreated shows another time (or is gone).
func startedAt(t *testing.T, ids []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		out[id] = enginetest.Docker(t, "inspect", "-f", "{{.State.StartedAt}}", id)
	}
	return out
}

func checkUntouched(t *testing.T, what string, before map[string]string) {
	t.Helper()
	for id, at := range before {
		got, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", id).CombinedOutput()
		if err != nil || strings.TrimSpace(string(got)) != "true "+at {
			t.Fatalf("%s: container %s was touched: %q (started %s before), %v", what, id[:12], strings.TrimSpace(string(got)), at, err)
		}
	}
}

// runServeOnce runs corral serve expecting it to exit by itself, and
// returns its output and exit error.
func runServeOnce(t *testing.T, dataDir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{"serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--admin-addr", "", "--chat-ui", "none", "--chat-addr", ""}, args...)
	out, err := exec.CommandContext(ctx, corralBin(t), all...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("corral serve did not exit:\n%s", out)
	}
	return string(out), err
}

// TestNamespaceOwnership: two corrals, two data dirs, one namespace. The
// second refuses, naming the first's data dir, and the first's containers
// are never touched; --take-over adopts them as they are and the first
// stops; corral down removes only what the store owns.
func TestNamespaceOwnership(t *testing.T) {
	image := simimage.Image(t)
	t.Parallel()
	ns := enginetest.Namespace(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	args := []string{"--namespace", ns, "--cpu-instances", "2", "--ollama-image", image}

	a := startServe(t, dirA, args...)
	st := a.waitStatus(t, "A healthy", 60*time.Second, allHealthy(2))
	before := startedAt(t, ids(st))

	// B refuses at start: one line naming A's data dir and --take-over.
	out, err := runServeOnce(t, dirB, args...)
	if err == nil {
		t.Fatalf("second corral on the namespace started:\n%s", out)
	}
	msg := out[strings.LastIndex(out, "corral: "):]
	for _, want := range []string{fmt.Sprintf("namespace %q belongs to the corral with data dir %s", ns, dirA), "--take-over", "CORRAL_TAKE_OVER"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("refusal %q lacks %q", msg, want)
		}
	}
	// A's containers carry its identity, and are as they were.
	stA, err := store.OpenReadOnly(dirA)
	if err == nil {
		stA.Close()
		t.Fatal("A's store not locked while A serves")
	}
	for _, id := range ids(st) {
		labels := enginetest.Docker(t, "inspect", "-f", `{{index .Config.Labels "corral.data-dir"}}`, id)
		if labels != dirA {
			t.Fatalf("container %s data-dir label = %q, want %s", id[:12], labels, dirA)
		}
	}
	time.Sleep(2 * time.Second) // a pass or more of A's
	checkUntouched(t, "after B refused", before)
	a.waitStatus(t, "A still healthy", 10*time.Second, allHealthy(2))

	// B takes over: A's containers are B's, as they are; A stops.
	b := startServe(t, dirB, append(args, "--take-over")...)
	stB := b.waitStatus(t, "B healthy on A's containers", 60*time.Second, allHealthy(2))
	if strings.Join(ids(stB), ",") != strings.Join(ids(st), ",") {
		t.Fatalf("B's containers %v, want A's %v", ids(stB), ids(st))
	}
	select {
	case err := <-a.done:
		a.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("A exited with %v, want status 1", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("A kept running after B took the namespace over")
	}
	if !a.logged("namespace owned by another corral: not managing it") {
		t.Fatal("A did not say why it stopped")
	}
	checkUntouched(t, "after the take-over", before)

	// B again without --take-over: the namespace is its own now.
	b.stop(t, syscall.SIGTERM)
	b = startServe(t, dirB, args...)
	b.waitStatus(t, "B healthy again", 60*time.Second, allHealthy(2))
	checkUntouched(t, "after B restarted", before)

	// corral down: refused while B runs, then B's containers, network
	// and record go; a container of another store stays; volumes only
	// with --volumes and a yes.
	if _, err := runCLI(t, "down", "--data-dir", dirB); err == nil || !strings.Contains(err.Error(), "corral is running with data dir "+dirB+": stop it first") {
		t.Fatalf("down while running: %v", err)
	}
	b.stop(t, syscall.SIGTERM)
	foreign := ns + "-other"
	enginetest.Docker(t, "create", "--name", foreign, "--label", "corral.managed=true", "--label", "corral.namespace="+ns,
		"--label", "corral.role=ollama", "--label", "corral.owner=someone-else", "--label", "corral.data-dir=/srv/else", image)
	out, err = runCLI(t, "down", "--data-dir", dirB)
	if err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	for _, want := range []string{"remove container  " + ns + "-ollama-0", "remove network    " + ns, "keep volume       " + ns + "-models (--volumes deletes it)",
		"leave             container " + foreign + " (data dir /srv/else): another corral's", "removed 2 containers, the network"} {
		if !strings.Contains(out, want) {
			t.Fatalf("down said:\n%s\nwant %q", out, want)
		}
	}
	for _, id := range ids(st) {
		if exec.Command("docker", "inspect", id).Run() == nil {
			t.Fatalf("container %s still there", id[:12])
		}
	}
	if exec.Command("docker", "network", "inspect", ns).Run() == nil {
		t.Fatal("network still there")
	}
	if exec.Command("docker", "volume", "inspect", ns+"-owner").Run() == nil {
		t.Fatal("ownership record still there")
	}
	if exec.Command("docker", "inspect", foreign).Run() != nil {
		t.Fatal("another corral's container was removed")
	}
	if exec.Command("docker", "volume", "inspect", ns+"-models").Run() != nil {
		t.Fatal("the models volume went without --volumes")
	}
	// --volumes: asked first; no is no.
	var buf strings.Builder
	app := newApp(&buf, &buf)
	app.stdin = strings.NewReader("no\n")
	if err := app.run(context.Background(), []string{"down", "--data-dir", dirB, "--volumes"}); err == nil || !strings.Contains(err.Error(), "nothing was removed") {
		t.Fatalf("down --volumes answered no: %v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "DELETE volume     "+ns+"-models") || exec.Command("docker", "volume", "inspect", ns+"-models").Run() != nil {
		t.Fatalf("down --volumes, no:\n%s", buf.String())
	}
	if out, err := runCLI(t, "down", "--data-dir", dirB, "--volumes", "--yes"); err != nil || !strings.Contains(out, "removed 1 volume.") {
		t.Fatalf("down --volumes --yes: %v\n%s", err, out)
	}
	if exec.Command("docker", "volume", "inspect", ns+"-models").Run() == nil {
		t.Fatal("models volume still there after --volumes --yes")
	}
}

func (p *daemonProc) logged(msg string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.log {
		if r["msg"] == msg {
			return true
		}
	}
	return false
}

// upgradeFrom is the release the upgrade test starts from: the last one
// before store IDs and namespace ownership. CORRAL_UPGRADE_FROM names
// another git revision.
const upgradeFrom = "5c2444a"

// oldCorral builds corral at rev from this repository's history, or skips
// the test where the history is not there (a shallow clone).
func oldCorral(t *testing.T, rev string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("git", "-C", root, "cat-file", "-e", rev+"^{commit}").Run(); err != nil {
		t.Skipf("git revision %s is not in this checkout: %v", rev, err)
	}
	src := t.TempDir()
	arch := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, rev, src)
	if out, err := arch.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", rev, err, out)
	}
	bin := filepath.Join(t.TempDir(), "corral-"+rev)
	build := exec.Command("go", "build", "-o", bin, "./cmd/corral")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build corral %s: %v\n%s", rev, err, out)
	}
	return bin
}

// TestServeUpgradeKeepsContainers: the last release runs the namespace;
// this one, started on the same data dir, migrates the store and adopts
// its containers as they are: same IDs, never restarted, though they
// carry no owner label; the namespace is recorded as this store's.
func TestServeUpgradeKeepsContainers(t *testing.T) {
	image := simimage.Image(t)
	rev := upgradeFrom
	if r := os.Getenv("CORRAL_UPGRADE_FROM"); r != "" {
		rev = r
	}
	old := oldCorral(t, rev)
	t.Parallel()
	ns := enginetest.Namespace(t)
	dataDir := t.TempDir()
	args := []string{"--namespace", ns, "--cpu-instances", "2", "--ollama-image", image}

	p := startServeBin(t, old, dataDir, args...)
	st := p.waitStatus(t, "the old release healthy", 60*time.Second, allHealthy(2))
	oldIDs := ids(st)
	before := startedAt(t, oldIDs)
	for _, id := range oldIDs {
		if l := enginetest.Docker(t, "inspect", "-f", `{{index .Config.Labels "corral.owner"}}`, id); l != "" {
			t.Fatalf("the old release labelled an owner: %q", l)
		}
	}
	p.stop(t, syscall.SIGTERM)

	p = startServe(t, dataDir, args...)
	st = p.waitStatus(t, "upgraded corral healthy", 60*time.Second, allHealthy(2))
	if got := ids(st); strings.Join(got, ",") != strings.Join(oldIDs, ",") {
		t.Fatalf("containers after the upgrade = %v, want the old release's %v", got, oldIDs)
	}
	checkUntouched(t, "after the upgrade", before)
	for _, ph := range p.phaseLog() {
		if strings.HasSuffix(ph, ":draining") {
			t.Fatalf("an instance was replaced on upgrade: %v", p.phaseLog())
		}
	}
	p.stop(t, syscall.SIGTERM)
	s, err := store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if owner := enginetest.Docker(t, "volume", "inspect", "-f", `{{index .Labels "corral.owner"}}`, ns+"-owner"); owner != s.ID() {
		t.Fatalf("namespace record owner %q, want the store's %s", owner, s.ID())
	}
	if v, _ := s.Schema(); v != store.SchemaVersion() {
		t.Fatalf("schema %d", v)
	}
	if got, _ := engine.RecordedNamespace(s); got != ns {
		t.Fatalf("recorded namespace %q", got)
	}
}
