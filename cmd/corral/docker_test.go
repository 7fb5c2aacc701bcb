package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"corral/cmd/ollama-sim/simimage"
	"corral/engine"
	"corral/engine/enginetest"
)

// These tests run the real corral binary against the real Docker Engine,
// with the Ollama simulator image in place of ollama/ollama.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// corralBin builds the binary once per test process.
func corralBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "corral-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "corral")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemonProc is one running `corral serve`.
type daemonProc struct {
	cmd     *exec.Cmd
	dataDir string
	done    chan error
	mu      sync.Mutex
	log     []map[string]any // JSON log records
}

func startServe(t testing.TB, dataDir string, args ...string) *daemonProc {
	t.Helper()
	return startServeBin(t, corralBin(t), dataDir, args...)
}

// startServeBin is startServe with another corral binary (an older
// release, for the upgrade test).
func startServeBin(t testing.TB, bin, dataDir string, args ...string) *daemonProc {
	t.Helper()
	// No chat UI unless a test asks: its real image cannot be pulled here.
	all := append([]string{"serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--admin-addr", "", "--chat-ui", "none", "--chat-addr", "",
		"--health-interval", "300ms", "--log-format", "json"}, args...)
	cmd := exec.Command(bin, all...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{cmd: cmd, dataDir: dataDir, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				p.mu.Lock()
				p.log = append(p.log, rec)
				p.mu.Unlock()
			}
			if testing.Verbose() {
				t.Logf("corral: %s", sc.Text())
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

func (p *daemonProc) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		p.done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatalf("corral did not exit on %v", sig)
	}
}

// phaseLog returns the instance phase transitions logged so far.
func (p *daemonProc) phaseLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.log {
		if r["msg"] == "instance phase" {
			out = append(out, fmt.Sprintf("%v:%v", r["instance"], r["to"]))
		}
	}
	return out
}

func (p *daemonProc) status(ctx context.Context) (engine.Status, error) {
	var st engine.Status
	err := newDaemon(p.dataDir).getJSON(ctx, "/api/v1/status", &st)
	return st, err
}

// waitStatus polls until ok accepts the status, or fails the test.
func (p *daemonProc) waitStatus(t testing.TB, what string, timeout time.Duration, ok func(engine.Status) bool) engine.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last engine.Status
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last, lastErr = p.status(ctx)
		cancel()
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	raw, _ := json.MarshalIndent(last, "", "  ")
	t.Fatalf("timed out waiting for %s; last status (err %v):\n%s", what, lastErr, raw)
	return last
}

func allHealthy(n int) func(engine.Status) bool {
	return func(st engine.Status) bool {
		if len(st.Instances) != n {
			return false
		}
		for _, in := range st.Instances {
			if in.Phase != engine.PhaseHealthy {
				return false
			}
		}
		return true
	}
}

func ids(st engine.Status) []string {
	var out []string
	for _, in := range st.Instances {
		out = append(out, in.ContainerID)
	}
	return out
}

func TestServeHealsAndAdopts(t *testing.T) {
	image := simimage.Image(t)
	t.Parallel()
	ns := enginetest.Namespace(t)
	dataDir := t.TempDir()
	args := []string{"--namespace", ns, "--cpu-instances", "2", "--ollama-image", image}

	p := startServe(t, dataDir, args...)
	st := p.waitStatus(t, "2 healthy instances", 60*time.Second, allHealthy(2))
	for i, in := range st.Instances {
		if want := fmt.Sprintf("%s-ollama-%d", ns, i); in.Name != want || in.GPU != "cpu" || in.Image != image || in.Endpoint == "" {
			t.Fatalf("instance %d = %+v", i, in)
		}
		labels := enginetest.Docker(t, "inspect", "-f", `{{index .Config.Labels "corral.managed"}} {{index .Config.Labels "corral.role"}} {{index .Config.Labels "corral.gpu"}} {{index .Config.Labels "corral.namespace"}}`, in.ContainerID)
		if labels != "true ollama cpu "+ns {
			t.Fatalf("labels of %s = %q", in.Name, labels)
		}
		// Ollama has no auth: nothing may be published.
		if pub := enginetest.Docker(t, "port", in.ContainerID); pub != "" {
			t.Fatalf("%s publishes ports: %s", in.Name, pub)
		}
		env := enginetest.Docker(t, "inspect", "-f", `{{range .Config.Env}}{{println .}}{{end}}`, in.ContainerID)
		if !strings.Contains(env, "OLLAMA_HOST=0.0.0.0:11434") {
			t.Fatalf("%s env lacks OLLAMA_HOST: %s", in.Name, env)
		}
		mounts := enginetest.Docker(t, "inspect", "-f", `{{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}`, in.ContainerID)
		if mounts != ns+"-models:/root/.ollama" {
			t.Fatalf("%s mounts = %q", in.Name, mounts)
		}
	}

	// docker kill: the same container comes back.
	killed := st.Instances[0]
	enginetest.Docker(t, "kill", killed.ContainerID)
	st = p.waitStatus(t, "killed instance healthy again", 60*time.Second, func(st engine.Status) bool {
		return allHealthy(2)(st) && st.Instances[0].ContainerID == killed.ContainerID &&
			enginetest.Docker(t, "inspect", "-f", "{{.State.Running}}", killed.ContainerID) == "true"
	})

	// docker rm -f: a new container takes its place.
	removed := st.Instances[1]
	enginetest.Docker(t, "rm", "-f", removed.ContainerID)
	st = p.waitStatus(t, "removed instance recreated", 60*time.Second, func(st engine.Status) bool {
		return allHealthy(2)(st) && st.Instances[1].ContainerID != removed.ContainerID && st.Instances[1].ContainerID != ""
	})
	before := ids(st)
	started := map[string]string{}
	for _, id := range before {
		started[id] = enginetest.Docker(t, "inspect", "-f", "{{.State.StartedAt}}", id)
	}

	// SIGKILL corral, start it again: the same containers are adopted,
	// nothing is recreated or restarted.
	p.stop(t, syscall.SIGKILL)
	p = startServe(t, dataDir, args...)
	st = p.waitStatus(t, "adopted instances healthy", 60*time.Second, allHealthy(2))
	if got := ids(st); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Fatalf("after restart containers = %v, want the adopted %v", got, before)
	}
	for _, id := range before {
		if s := enginetest.Docker(t, "inspect", "-f", "{{.State.StartedAt}}", id); s != started[id] {
			t.Fatalf("container %s was restarted (%s → %s)", id[:12], started[id], s)
		}
	}

	// SIGTERM leaves the containers running.
	p.stop(t, syscall.SIGTERM)
	for _, id := range before {
		if r := enginetest.Docker(t, "inspect", "-f", "{{.State.Running}}", id); r != "true" {
			t.Fatalf("container %s stopped with corral", id[:12])
		}
	}

	// A new image: rolling replacement, one instance at a time, each
	// healthy before the next goes.
	newImage := "corral-ollama-sim:" + ns
	enginetest.Docker(t, "tag", image, newImage)
	t.Cleanup(func() { exec.Command("docker", "rmi", newImage).Run() })
	p = startServe(t, dataDir, "--namespace", ns, "--ollama-image", newImage)
	st = p.waitStatus(t, "instances replaced with the new image", 90*time.Second, func(st engine.Status) bool {
		if !allHealthy(2)(st) {
			return false
		}
		for _, in := range st.Instances {
			if in.Image != newImage {
				return false
			}
		}
		return true
	})
	for i, id := range ids(st) {
		if id == before[i] {
			t.Fatalf("instance %d kept its old container", i)
		}
	}
	want := []string{ns + "-ollama-0:draining", ns + "-ollama-0:healthy", ns + "-ollama-1:draining", ns + "-ollama-1:healthy"}
	var rollout []string
	// The log is read as it comes; give the last lines a moment.
	for deadline := time.Now().Add(5 * time.Second); len(rollout) < len(want) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		rollout = rollout[:0]
		for _, ev := range p.phaseLog() {
			if strings.HasSuffix(ev, ":draining") || (len(rollout) > 0 && strings.HasSuffix(ev, ":healthy")) {
				rollout = append(rollout, ev)
			}
		}
	}
	if strings.Join(rollout, " ") != strings.Join(want, " ") {
		t.Fatalf("phases %v\nrollout order = %v, want %v (one at a time, each healthy before the next)", p.phaseLog(), rollout, want)
	}
	// --cpu-instances was not given this time: the stored 2 stayed.
	if len(st.Instances) != 2 {
		t.Fatalf("instances = %d, want the stored 2", len(st.Instances))
	}
}

func TestServeMissingImageFails(t *testing.T) {
	simimage.Image(t) // skips when no Docker daemon answers
	t.Parallel()
	ns := enginetest.Namespace(t)
	missing := "corral-test-missing/" + ns + ":1"
	p := startServe(t, t.TempDir(), "--namespace", ns, "--ollama-image", missing)
	st := p.waitStatus(t, "failed pull", 60*time.Second, func(st engine.Status) bool {
		return len(st.Instances) == 1 && st.Instances[0].Phase == engine.PhaseFailed
	})
	if r := st.Instances[0].Reason; !strings.Contains(r, "pull "+missing) || !strings.Contains(r, "docker load the image or pick a local one with --ollama-image") {
		t.Fatalf("reason = %q, want Docker's pull error and what to do", r)
	}
	var out bytes.Buffer
	if err := newApp(&out, &out).run(context.Background(), []string{"status", "--data-dir", p.dataDir}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "failed") || !strings.Contains(out.String(), missing) {
		t.Fatalf("status table:\n%s", out.String())
	}
	// The gateway's 503 says why no instance serves: the failed pull.
	key, _, err := runApp(t, "keys", "create", "ci", "--data-dir", p.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+p.logAttr(t, "gateway listening", "addr")+"/api/chat", strings.NewReader(`{"model":"llama3.2:1b"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(key))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "model llama3.2:1b is unavailable: no Ollama instance is running yet: " + st.Instances[0].Name + " is failed: "; resp.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), want) || !strings.Contains(string(body), missing) {
		t.Fatalf("gateway: %d %s, want 503 with %q", resp.StatusCode, body, want)
	}
}
