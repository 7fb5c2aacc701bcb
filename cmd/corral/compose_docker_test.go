package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corral/cmd/ollama-sim/simimage"
	"corral/engine"
	"corral/engine/enginetest"
)

// offlineDockerfile is the repository's Dockerfile as this machine can
// build it: no registry means neither golang nor distroless can be pulled,
// so its runtime stage (everything from "FROM ... AS runtime" on: env,
// volume, health check, entrypoint) is built on scratch with a static
// corral built on the host. The build stage is what the test cannot run.
func offlineDockerfile(t testing.TB) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	runtime := false
	for line := range strings.SplitSeq(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "FROM ") && strings.HasSuffix(line, " AS runtime"):
			runtime = true
			b.WriteString("FROM scratch\n")
		case !runtime:
		case strings.HasPrefix(line, "COPY --from=build /out/corral "):
			b.WriteString("COPY corral " + strings.Fields(line)[3] + "\n")
		default:
			b.WriteString(line + "\n")
		}
	}
	if !runtime || !strings.Contains(b.String(), "COPY corral /usr/local/bin/corral") {
		t.Fatalf("Dockerfile: no runtime stage that copies /out/corral (the test builds that stage offline):\n%s", raw)
	}
	return b.String()
}

// composeCmd is how this machine runs Docker Compose: the plugin or the
// standalone docker-compose.
func composeCmd(t testing.TB) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	t.Fatal("no Docker Compose here: install the docker-compose package (or Docker's compose plugin)")
	return nil
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestComposeExample brings up docker-compose.example.yml as a user would,
// with the locally built image and CPU instances of the simulator: corral
// turns healthy, so do its instances, a key made inside the container
// lists the models over /v1/models, and compose down removes corral.
func TestComposeExample(t *testing.T) {
	sim := simimage.Image(t) // skips when no Docker daemon answers
	compose := composeCmd(t)
	t.Parallel()
	img := &enginetest.GoImage{Repository: "corral-compose-test", Package: "./cmd/corral", File: "corral", Dockerfile: offlineDockerfile(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	image, err := img.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}

	ns := enginetest.Namespace(t) // its containers go when the test ends
	project := ns
	gateway, admin := freePort(t), freePort(t)
	env := append(os.Environ(),
		"CORRAL_IMAGE="+image,
		"CORRAL_NAMESPACE="+ns,
		"CORRAL_OLLAMA_IMAGE="+sim,
		"CORRAL_CPU_INSTANCES=2",
		"CORRAL_ADDR="+gateway,
		"CORRAL_ADMIN_ADDR="+admin,
		"CORRAL_CHAT_UI=none",
		"CORRAL_CHAT_ADDR=",
		"CORRAL_HEALTH_INTERVAL=300ms",
	)
	file := filepath.Join("..", "..", "docker-compose.example.yml")
	run := func(args ...string) (string, error) {
		full := append(append(append([]string{}, compose...), "-p", project, "-f", file), args...)
		cmd := exec.CommandContext(ctx, full[0], full[1:]...)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if err != nil {
			return out.String(), &composeError{args: args, err: err, stderr: errOut.String()}
		}
		return out.String(), nil
	}
	// Cleanups run last first: compose down, then the namespace's
	// instances, network and volumes by label.
	t.Cleanup(func() { run("down", "-v", "--remove-orphans", "-t", "5") })

	if out, err := run("up", "-d", "--no-build"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	id, err := run("ps", "-q", "corral")
	id = strings.TrimSpace(id)
	if err != nil || id == "" {
		t.Fatalf("compose ps: %q %v", id, err)
	}
	logs := func() string {
		out, _ := exec.Command("docker", "logs", "--tail", "40", id).CombinedOutput()
		return string(out)
	}

	// corral healthy: the image's health check (corral status) passes.
	waitFor(t, "corral's container healthy", 90*time.Second, logs, func() bool {
		return enginetest.Docker(t, "inspect", "-f", "{{.State.Health.Status}}", id) == "healthy"
	})
	// Its instances healthy, as corral status inside the container says.
	var st engine.Status
	waitFor(t, "2 healthy instances", 90*time.Second, logs, func() bool {
		out, err := run("exec", "-T", "corral", "corral", "status", "--json")
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && allHealthy(2)(st)
	})
	if st.Namespace != ns || st.Instances[0].Image != sim {
		t.Fatalf("status inside the container: %+v", st)
	}

	out, err := run("exec", "-T", "corral", "corral", "keys", "create", "compose-test")
	key := strings.TrimSpace(out)
	if err != nil || !strings.HasPrefix(key, "crl_") {
		t.Fatalf("keys create in the container: %q %v", out, err)
	}
	// The gateway routes once it has polled the instances' models.
	var models struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	var code int
	waitFor(t, "/v1/models with the key", 30*time.Second, logs, func() bool {
		req, _ := http.NewRequest("GET", "http://"+gateway+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		code = resp.StatusCode
		return code == 200 && json.NewDecoder(resp.Body).Decode(&models) == nil && len(models.Data) > 0
	})
	resp, err := http.Get("http://" + gateway + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/v1/models without a key: %d, want 401", resp.StatusCode)
	}

	// down removes corral's container (and the data volume, with -v); the
	// instances it made are not the project's: they go by label.
	if out, err := run("down", "-v", "-t", "5"); err != nil {
		t.Fatalf("compose down: %v\n%s", err, out)
	}
	if left := enginetest.Docker(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project); left != "" {
		t.Fatalf("compose down left containers: %s", left)
	}
	if vols := enginetest.Docker(t, "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+project); vols != "" {
		t.Fatalf("compose down -v left volumes: %s", vols)
	}
	enginetest.RemoveNamespace(ns)
	if left := enginetest.Docker(t, "ps", "-aq", "--filter", "label=corral.namespace="+ns); left != "" {
		t.Fatalf("the namespace's containers remain: %s", left)
	}
}

type composeError struct {
	args   []string
	err    error
	stderr string
}

func (e *composeError) Error() string {
	return "compose " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.stderr
}

// waitFor polls ok until it holds, or fails the test with what diag says.
func waitFor(t testing.TB, what string, timeout time.Duration, diag func() string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; corral's log:\n%s", what, diag())
}
