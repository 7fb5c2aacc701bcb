package engine

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"corral/cmd/ollama-sim/simimage"
	"corral/engine/enginetest"
)

func waitFor(t *testing.T, e *Engine, what string, timeout time.Duration, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if st := e.Status(); ok(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; status: %+v", what, e.Status())
	return Status{}
}

// TestDockerVanishesMidRun cuts the engine's path to Docker while it runs:
// it keeps running, says "docker unreachable", and picks up where it was
// when Docker answers again, without touching the healthy container.
func TestDockerVanishesMidRun(t *testing.T) {
	image := simimage.Image(t)
	t.Parallel()
	ns := enginetest.Namespace(t)
	proxy := enginetest.NewSocketProxy(t)
	specs := []Spec{{Name: instanceName(ns, 0), GPU: cpuGPU, GPUIndex: -1, Image: image, Env: map[string]string{"OLLAMA_HOST": "0.0.0.0:11434"}}}
	e, err := New(Config{
		Namespace: ns, DockerHost: proxy.Host(), Reach: ReachIP,
		HealthInterval: 200 * time.Millisecond, RelistInterval: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, specs)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	healthy := func(st Status) bool {
		return st.Docker == "ok" && len(st.Instances) == 1 && st.Instances[0].Phase == PhaseHealthy
	}
	st := waitFor(t, e, "healthy", 60*time.Second, healthy)
	id := st.Instances[0].ContainerID

	proxy.Cut()
	st = waitFor(t, e, "docker unreachable", 30*time.Second, func(st Status) bool {
		return strings.HasPrefix(st.Docker, "docker unreachable")
	})
	if len(st.Instances) != 1 {
		t.Fatalf("instances forgotten while Docker was away: %+v", st)
	}
	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	st = waitFor(t, e, "docker back", 60*time.Second, healthy)
	if st.Instances[0].ContainerID != id {
		t.Fatalf("container replaced after Docker came back: %s → %s", id, st.Instances[0].ContainerID)
	}
}
