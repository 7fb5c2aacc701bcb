package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"corral/engine"
	"corral/engine/enginetest"
	"corral/engine/models"
)

// simTags lists the models one simulator instance reports.
func simTags(t testing.TB, endpoint string) map[string]bool {
	var tags struct {
		Models []struct {
			Name string `json:"name"`
		} `json:"models"`
	}
	sim(t, endpoint, "GET", "/api/tags", "", &tags)
	out := map[string]bool{}
	for _, m := range tags.Models {
		out[m.Name] = true
	}
	return out
}

func simLoaded(t testing.TB, endpoint, model string) bool {
	var ps struct {
		Models []struct {
			Name string `json:"name"`
		} `json:"models"`
	}
	sim(t, endpoint, "GET", "/api/ps", "", &ps)
	for _, m := range ps.Models {
		if m.Name == model {
			return true
		}
	}
	return false
}

func simCounter(t testing.TB, endpoint, field string) int {
	var st map[string]any
	sim(t, endpoint, "GET", "/_sim/stats", "", &st)
	n, _ := st[field].(float64)
	return int(n)
}

// pullEvents pulls through the admin API and returns every event.
func (f *fleet) pullEvents(t testing.TB, model string) []models.Event {
	t.Helper()
	var evs []models.Event
	err := newDaemon(f.dataDir).events(context.Background(), http.MethodPost, "/api/v1/models/pull", map[string]string{"model": model}, func(data []byte) error {
		var ev models.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return err
		}
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		t.Fatalf("pull %s: %v", model, err)
	}
	return evs
}

// cli runs a corral command against the fleet's daemon; it returns what
// went to stdout (stderr has hints meant for people).
func (f *fleet) cli(t testing.TB, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := newApp(&out, &errOut).run(context.Background(), append(args, "--data-dir", f.dataDir))
	return out.String(), err
}

func TestModelsPullOnce(t *testing.T) {
	f := startFleet(t, 3)
	t.Parallel()
	eps := []string{f.st.Instances[0].Endpoint, f.st.Instances[1].Endpoint, f.st.Instances[2].Endpoint}
	for _, ep := range eps {
		sim(t, ep, "POST", "/_sim/config", `{"pull_duration":"1500ms"}`, nil)
	}

	// Two pulls of one model at once: one upstream pull, both see it all.
	var wg sync.WaitGroup
	results := make([][]models.Event, 2)
	for i := range 2 {
		wg.Go(func() { results[i] = f.pullEvents(t, "tinyllama") })
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	pulls := 0
	for _, ep := range eps {
		pulls += simCounter(t, ep, "pulls")
	}
	if pulls != 1 {
		t.Fatalf("upstream pulls = %d, want 1 for two joined pulls", pulls)
	}
	for i, evs := range results {
		last := evs[len(evs)-1]
		if !last.Done || last.Error != "" || last.Status != "success" || len(last.Instances) != 3 {
			t.Fatalf("watcher %d ended with %+v", i, last)
		}
		// In order: corral's first step, Ollama's manifest, byte progress
		// that never goes back, then verification and success.
		if !strings.HasPrefix(evs[0].Status, "pulling through ") || evs[1].Status != "pulling manifest" {
			t.Fatalf("watcher %d starts with %q, %q", i, evs[0].Status, evs[1].Status)
		}
		done := map[string]int64{}
		sawBytes := false
		for _, ev := range evs {
			if ev.Digest != "" && ev.Total > 0 {
				sawBytes = true
				if ev.Completed < done[ev.Digest] {
					t.Fatalf("progress went back for %s: %d after %d", ev.Digest, ev.Completed, done[ev.Digest])
				}
				done[ev.Digest] = ev.Completed
			}
		}
		if !sawBytes || evs[len(evs)-2].Status != "verifying on every instance" {
			t.Fatalf("watcher %d events: %+v", i, evs)
		}
	}
	for _, ep := range eps {
		if !simTags(t, ep)["tinyllama:latest"] {
			t.Fatalf("%s does not list the pulled model", ep)
		}
	}

	// The CLI shows it, and the gateway can use it at once.
	out, err := f.cli(t, "models")
	if err != nil || !strings.Contains(out, "tinyllama:latest") {
		t.Fatalf("corral models: %v\n%s", err, out)
	}
	resp, err := f.do("POST", "/api/chat", `{"model":"tinyllama","stream":false}`)
	if err != nil {
		t.Fatal(err)
	}
	readAllBody(t, resp)

	// A bad name fails with Ollama's message, and nothing is left behind.
	out, err = f.cli(t, "pull", "nosuch-model:1b")
	if err == nil || !strings.Contains(err.Error(), "file does not exist") {
		t.Fatalf("bad pull: %v\n%s", err, out)
	}
	// Cancel: a slow pull stopped half way leaves no model anywhere.
	for _, ep := range eps {
		sim(t, ep, "POST", "/_sim/config", `{"pull_duration":"20s"}`, nil)
	}
	done := make(chan []models.Event)
	go func() { done <- f.pullEvents(t, "mistral:7b") }()
	cliDone := make(chan error)
	time.Sleep(500 * time.Millisecond)
	go func() { _, err := f.cli(t, "pull", "mistral:7b"); cliDone <- err }() // joins
	time.Sleep(500 * time.Millisecond)
	var cancelled map[string]string
	if err := newDaemon(f.dataDir).do(context.Background(), http.MethodPost, "/api/v1/models/pull/cancel", map[string]string{"model": "mistral:7b"}, &cancelled); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	select {
	case evs := <-done:
		if last := evs[len(evs)-1]; !last.Done || last.Error != "pull cancelled" {
			t.Fatalf("cancelled pull ended with %+v", last)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("cancelled pull did not end")
	}
	if err := <-cliDone; err == nil || !strings.Contains(err.Error(), "pull cancelled") {
		t.Fatalf("corral pull of a cancelled pull: %v", err)
	}
	for _, ep := range eps {
		if simTags(t, ep)["mistral:7b"] {
			t.Fatalf("%s lists a cancelled model", ep)
		}
	}

	// Delete removes it from every instance.
	if out, err := f.cli(t, "rm", "tinyllama"); err != nil {
		t.Fatalf("rm: %v\n%s", err, out)
	}
	for _, ep := range eps {
		if simTags(t, ep)["tinyllama:latest"] {
			t.Fatalf("%s still lists a deleted model", ep)
		}
	}
}

func TestModelsPlacement(t *testing.T) {
	f := startFleet(t, 3)
	t.Parallel()
	const model = "qwen2.5:0.5b"
	byName := map[string]engine.InstanceStatus{}
	for _, in := range f.st.Instances {
		byName[in.Name] = in
	}
	loadedOn := func() []string {
		var on []string
		for _, in := range f.st.Instances {
			if simLoaded(t, in.Endpoint, model) {
				on = append(on, in.Name)
			}
		}
		return on
	}
	waitLoaded := func(what string, n int) []string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if on := loadedOn(); len(on) == n {
				time.Sleep(500 * time.Millisecond)
				if on2 := loadedOn(); strings.Join(on2, ",") == strings.Join(on, ",") {
					return on
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: loaded on %v, want exactly %d", what, loadedOn(), n)
		return nil
	}

	// Bad input changes nothing.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"place", "nosuch", "--replicas", "1"}, "not on any instance: corral pull nosuch:latest first"},
		{[]string{"place", model, "--replicas", "4"}, "--replicas 4: there are only 3 instances"},
		{[]string{"place", model, "--gpus", "7"}, "no instance on GPU 7"},
		{[]string{"place", model}, "give --replicas N"},
	} {
		if _, err := f.cli(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("corral %v: %v, want %q", tc.args, err, tc.want)
		}
	}

	if out, err := f.cli(t, "place", model, "--replicas", "2"); err != nil {
		t.Fatalf("place: %v\n%s", err, out)
	}
	on := waitLoaded("after place", 2)

	// Requests for the model land on the two placed instances only.
	for _, in := range f.st.Instances {
		sim(t, in.Endpoint, "POST", "/_sim/reset", "", nil)
	}
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			resp, err := f.do("POST", "/api/chat", `{"model":"`+model+`","stream":false}`)
			if err == nil {
				readAllBody(t, resp)
			}
		})
	}
	wg.Wait()
	for _, in := range f.st.Instances {
		placed := in.Name == on[0] || in.Name == on[1]
		if n := served(t, in.Endpoint); (n == 0) == placed {
			t.Fatalf("%s (placed %v) served %d of 12 requests", in.Name, placed, n)
		}
	}

	// Kill one of the two: once healed, it is exactly two again.
	victim := byName[on[0]]
	enginetest.Docker(t, "kill", victim.ContainerID)
	f.waitStatus(t, "victim healed", 60*time.Second, allHealthy(3))
	waitLoaded("after a placed instance was killed and healed", 2)

	// Deleting a placed model is refused; the placement stays.
	if _, err := f.cli(t, "rm", model); err == nil || !strings.Contains(err.Error(), "is placed (warm on 2 instances)") {
		t.Fatalf("rm of a placed model: %v", err)
	}
	out, err := f.cli(t, "models")
	if err != nil || !strings.Contains(out, "warm on 2 instances") {
		t.Fatalf("corral models after refused rm: %v\n%s", err, out)
	}
	if out, err := f.cli(t, "place", model, "--clear"); err != nil {
		t.Fatalf("place --clear: %v\n%s", err, out)
	}
}

// TestModelsImport: a GGUF made here, imported with no registry through
// corral, is listed by every instance and serves chat.
func TestModelsImport(t *testing.T) {
	f := startFleet(t, 2)
	t.Parallel()
	gguf := filepath.Join(t.TempDir(), "tiny.gguf")
	if out, err := exec.Command("go", "run", "../mkgguf", "-o", gguf).CombinedOutput(); err != nil {
		t.Fatalf("mkgguf: %v\n%s", err, out)
	}
	out, err := f.cli(t, "models", "import", gguf, "--name", "tiny", "--template", "{{ .Prompt }}", "--param", "temperature=0", "--param", "stop=</s>")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !strings.Contains(out, "tiny:latest is on "+f.st.Instances[0].Name) {
		t.Fatalf("import output:\n%s", out)
	}
	for _, in := range f.st.Instances {
		if !simTags(t, in.Endpoint)["tiny:latest"] {
			t.Fatalf("%s does not list the imported model", in.Name)
		}
	}
	resp, err := f.do("POST", "/api/generate", `{"model":"tiny","prompt":"hi","stream":false}`)
	if err != nil {
		t.Fatal(err)
	}
	readAllBody(t, resp)
	// Not a GGUF: refused before anything reaches an instance.
	bad := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(bad, []byte("hello"), 0o600)
	if _, err := f.cli(t, "models", "import", bad, "--name", "bad"); err == nil || !strings.Contains(err.Error(), "not a GGUF file") {
		t.Fatalf("import of a text file: %v", err)
	}
	if _, err := f.cli(t, "models", "import", gguf); err == nil || !strings.Contains(err.Error(), "--name is required") {
		t.Fatalf("import without --name: %v", err)
	}
}
