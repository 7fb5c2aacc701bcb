package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"corral/engine"
	"corral/engine/enginetest"
)

// TestInstanceSettingsRollOut: new parallel slots from the settings API
// (as the instances page sends them) replace the instances one at a
// time: one is always healthy, and both end with the new setting; a bad
// value changes nothing.
func TestInstanceSettingsRollOut(t *testing.T) {
	f := startFleet(t, 2)
	t.Parallel()
	d := newDaemon(f.dataDir)
	ctx := context.Background()
	var out map[string]any
	err := d.do(ctx, http.MethodPut, "/api/v1/settings/instances", map[string]any{"keep_alive": "forever"}, &out)
	if err == nil || !strings.Contains(err.Error(), `--keep-alive "forever"`) {
		t.Fatalf("a bad keep-alive: %v", err)
	}
	old := map[string]string{}
	for _, in := range f.st.Instances {
		old[in.Name] = in.ContainerID
	}
	if err := d.do(ctx, http.MethodPut, "/api/v1/settings/instances", map[string]any{"num_parallel": 3}, &out); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := f.status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		healthy, replaced := 0, 0
		for _, in := range st.Instances {
			if in.Phase == engine.PhaseHealthy {
				healthy++
			}
			if in.ContainerID != old[in.Name] && in.Phase == engine.PhaseHealthy {
				replaced++
			}
		}
		if healthy == 0 {
			t.Fatalf("no instance healthy during the roll-out: %+v", st.Instances)
		}
		if replaced == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rolled out: %+v", st.Instances)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, in := range f.st.Instances {
		env := enginetest.Docker(t, "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", in.Name)
		if !strings.Contains(env, "OLLAMA_NUM_PARALLEL=3") {
			t.Fatalf("%s runs with:\n%s", in.Name, env)
		}
	}
	var cur engine.Settings
	if err := d.getJSON(ctx, "/api/v1/settings/instances", &cur); err != nil || cur.NumParallel != 3 || cur.CPUInstances != 2 {
		t.Fatalf("settings after: %+v %v", cur, err)
	}
}
