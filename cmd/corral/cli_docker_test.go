package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"corral/engine"
	"corral/engine/enginetest"
	"corral/engine/models"
)

// syncBuffer is a bytes.Buffer a command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPullCancel: Ctrl-C during corral pull has the daemon cancel the
// pull, and says so; corral pull --cancel cancels one begun elsewhere.
// Then, with the one instance frozen, the gateway's 503 names the model
// and why, without the address corral reaches the instance at.
func TestPullCancel(t *testing.T) {
	f := startFleet(t, 1)
	t.Parallel()
	ep := f.st.Instances[0].Endpoint
	sim(t, ep, "POST", "/_sim/config", `{"pull_duration":"20s"}`, nil)
	const model = "mistral:7b"
	noPull := func(t *testing.T) {
		t.Helper()
		_, err := cancelPull(context.Background(), f.dataDir, model)
		if err == nil || !strings.Contains(err.Error(), "no pull of "+model+" is under way") {
			t.Fatalf("a pull of %s is still under way: cancel says %v", model, err)
		}
		if simTags(t, ep)[model] {
			t.Fatalf("%s lists the cancelled model", ep)
		}
	}

	t.Run("Ctrl-C", func(t *testing.T) {
		ctx, interrupt := context.WithCancel(context.Background())
		defer interrupt()
		var out, errOut syncBuffer
		done := make(chan error, 1)
		go func() { done <- newApp(&out, &errOut).run(ctx, []string{"pull", model, "--data-dir", f.dataDir}) }()
		waitFor(t, "the pull to show progress", 15*time.Second, out.String, func() bool { return strings.Contains(out.String(), "%") })
		began := time.Now()
		interrupt() // as main's signal.NotifyContext does on Ctrl-C
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "pull "+model+": pull cancelled") {
				t.Fatalf("interrupted pull: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
			}
		case <-time.After(cancelAskTimeout + cancelEndTimeout):
			t.Fatalf("corral pull did not end after Ctrl-C\nstdout: %s\nstderr: %s", out.String(), errOut.String())
		}
		if d := time.Since(began); d > 10*time.Second {
			t.Errorf("Ctrl-C took %s to end the pull", d)
		}
		if !strings.Contains(errOut.String(), "interrupted: asking corral to cancel pull "+model) {
			t.Errorf("stderr does not say what Ctrl-C does: %q", errOut.String())
		}
		t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
		noPull(t)
	})

	t.Run("--cancel", func(t *testing.T) {
		events := make(chan models.Event, 64)
		watchErr := make(chan error, 1)
		go func() {
			watchErr <- newDaemon(f.dataDir).events(context.Background(), http.MethodPost, "/api/v1/models/pull", map[string]string{"model": model}, func(data []byte) error {
				var ev models.Event
				if err := json.Unmarshal(data, &ev); err != nil {
					return err
				}
				events <- ev
				return nil
			})
		}()
		select {
		case <-events:
		case <-time.After(15 * time.Second):
			t.Fatal("the pull did not start")
		}
		out, _, err := runApp(t, "pull", "--cancel", model, "--data-dir", f.dataDir)
		if err != nil || out != "cancelled the pull of "+model+"\n" {
			t.Fatalf("pull --cancel: %v\n%s", err, out)
		}
		var last models.Event
		deadline := time.After(15 * time.Second)
		for !last.Done {
			select {
			case last = <-events:
			case <-deadline:
				t.Fatal("the cancelled pull did not end")
			}
		}
		if last.Error != "pull cancelled" {
			t.Fatalf("the pull ended with %+v", last)
		}
		if err := <-watchErr; err != nil {
			t.Fatal(err)
		}
		noPull(t)
		if _, _, err := runApp(t, "pull", "--cancel", model, "--data-dir", f.dataDir); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "no pull of "+model+" is under way") {
			t.Fatalf("pull --cancel with none under way: %v", err)
		}
	})

	t.Run("503 without addresses", func(t *testing.T) {
		in := f.st.Instances[0]
		u, err := url.Parse(in.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		enginetest.Docker(t, "pause", in.ContainerID)
		defer enginetest.Docker(t, "unpause", in.ContainerID)
		f.waitStatus(t, "the frozen instance out", 30*time.Second, func(st engine.Status) bool {
			return len(st.Instances) == 1 && st.Instances[0].Phase != engine.PhaseHealthy
		})
		for _, path := range []string{"/v1/chat/completions", "/api/chat"} {
			resp, err := f.do("POST", path, `{"model":"llama3.2:1b","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := string(raw)
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "llama3.2:1b") || !strings.Contains(body, in.Name+" is ") {
				t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
			}
			for _, leak := range []string{u.Host, u.Hostname(), ":" + u.Port()} {
				if strings.Contains(body, leak) {
					t.Fatalf("%s: the 503 gives away %q: %s", path, leak, body)
				}
			}
			t.Logf("%s: %s", path, strings.TrimSpace(body))
		}
	})
}
