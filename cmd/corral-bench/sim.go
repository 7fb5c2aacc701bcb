package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"time"
)

// buildSim compiles the simulator into dir.
func buildSim(ctx context.Context, dir string, flags []string) (string, error) {
	bin := filepath.Join(dir, "ollama-sim")
	args := append([]string{"build", "-o", bin}, flags...)
	// The package path works from anywhere in the module.
	cmd := exec.CommandContext(ctx, "go", append(args, "corral/cmd/ollama-sim")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ollama-sim (run from within the corral repository, as scripts/bench does, or pass --sim): %w\n%s", err, out)
	}
	return bin, nil
}

// sim is a running simulator.
type sim struct {
	*child
	base string // http://127.0.0.1:PORT
	http *http.Client
}

// startSim runs the simulator on a free port with the model on disk and
// room for every stream at once, and waits until it answers.
func startSim(ctx context.Context, dir, bin, model string) (*sim, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := environ([]string{"OLLAMA_", "SIM_"},
		"OLLAMA_HOST="+addr,
		"OLLAMA_MODELS="+filepath.Join(dir, "models"),
		"OLLAMA_NUM_PARALLEL=4096",
		"OLLAMA_MAX_QUEUE=65536",
		"OLLAMA_KEEP_ALIVE=-1",
		"SIM_MODELS="+model,
	)
	c, err := startChild(ctx, dir, "ollama-sim", env, bin)
	if err != nil {
		return nil, err
	}
	s := &sim{child: c, base: "http://" + addr, http: &http.Client{Timeout: 10 * time.Second}}
	if err := c.waitHTTP(ctx, s.base+"/api/version", 15*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return s, nil
}

// simKnobs are the /_sim/config fields a scenario sets.
type simKnobs struct {
	FirstTokenDelay string `json:"first_token_delay"`
	TokenInterval   string `json:"token_interval"`
	LoadDelay       string `json:"load_delay"`
	DefaultTokens   int    `json:"default_tokens"`
}

func (s *sim) configure(ctx context.Context, first, interval time.Duration, tokens int) error {
	k := simKnobs{FirstTokenDelay: first.String(), TokenInterval: interval.String(), LoadDelay: "0s", DefaultTokens: tokens}
	return s.post(ctx, "/_sim/config", k)
}

// preload loads the model (an empty prompt only loads it), so no
// measurement pays for a load.
func (s *sim) preload(ctx context.Context, model string) error {
	return s.post(ctx, "/api/generate", map[string]any{"model": model, "stream": false})
}

func (s *sim) post(ctx context.Context, path string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("simulator %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("simulator %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

func (s *sim) stop() {
	s.http.CloseIdleConnections()
	s.child.stop()
}
