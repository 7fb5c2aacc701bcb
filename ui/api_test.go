package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine"
	"corral/gpu"
)

type fakeEngine struct{ st engine.Status }

func (f fakeEngine) Status() engine.Status { return f.st }

func (fakeEngine) Restart(context.Context, string) error  { return nil }
func (fakeEngine) Recreate(context.Context, string) error { return nil }
func (fakeEngine) Stop(context.Context, string) error     { return nil }
func (fakeEngine) Start(string) error                     { return nil }
func (fakeEngine) Events(string) []engine.Event           { return nil }
func (fakeEngine) Logs(_ context.Context, name string, _ int, _ bool, w io.Writer) error {
	if name != "corral-ollama-0" {
		return fmt.Errorf("no instance or chat UI container %q", name)
	}
	_, err := io.WriteString(w, "time=… msg=\"Listening on [::]:11434\"\n")
	return err
}

func (f fakeEngine) SetWeight(name string, w int) error {
	if name != "corral-ollama-0" || w < 1 {
		return fmt.Errorf("weight %d for %s refused", w, name)
	}
	return nil
}

type fakeGPUs struct{}

func (fakeGPUs) Inventory() gpu.Inventory {
	return gpu.Inventory{Devices: []gpu.Device{{Index: 0, UUID: "GPU-1", Name: "T4"}}}
}
func (fakeGPUs) Latest() []gpu.Metrics {
	return []gpu.Metrics{{Index: 0, UUID: "GPU-1", TemperatureC: 40}}
}

// adminFor is the admin listener's handler for token over deps.
func adminFor(t *testing.T, token string, deps Deps) http.Handler {
	t.Helper()
	h, err := NewAdmin(AdminConfig{Token: token}, deps)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAPI(t *testing.T) {
	gin.SetMode(gin.TestMode)
	st := engine.Status{Namespace: "corral", Docker: "ok", Instances: []engine.InstanceStatus{{Name: "corral-ollama-0", GPU: "GPU-1", Phase: engine.PhaseHealthy}}}
	deps := Deps{Engine: fakeEngine{st}, GPUs: fakeGPUs{}}
	api := NewAPI(deps)
	guarded := adminFor(t, "s3cret", deps)

	cases := []struct {
		name, path, auth string
		h                http.Handler
		code             int
	}{
		{"socket status", "/api/v1/status", "", api, 200},
		{"socket gpus", "/api/v1/gpus", "", api, 200},
		{"unknown path", "/api/v1/nope", "", api, 404},
		{"admin without token", "/api/v1/status", "", guarded, 401},
		{"admin wrong token", "/api/v1/status", "Bearer nope", guarded, 401},
		{"admin basic auth", "/api/v1/status", "Basic czNjcmV0", guarded, 401},
		{"admin token", "/api/v1/status", "Bearer s3cret", guarded, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("code = %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %s", rec.Body)
			}
			if tc.code != 200 && body["error"] == nil {
				t.Fatalf("error body lacks error: %s", rec.Body)
			}
		})
	}

	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/status", nil))
	var got engine.Status
	json.Unmarshal(rec.Body.Bytes(), &got)
	if len(got.Instances) != 1 || got.Instances[0].Phase != engine.PhaseHealthy || got.Instances[0].Name != "corral-ollama-0" {
		t.Fatalf("status = %+v", got)
	}
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/gpus", nil))
	var g GPUReport
	json.Unmarshal(rec.Body.Bytes(), &g)
	if len(g.Devices) != 1 || len(g.Metrics) != 1 || g.Metrics[0].TemperatureC != 40 {
		t.Fatalf("gpus = %s", rec.Body)
	}
}

func TestSetWeightAPI(t *testing.T) {
	gin.SetMode(gin.TestMode)
	api := NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}})
	cases := []struct {
		path, body string
		code       int
	}{
		{"/api/v1/instances/corral-ollama-0/weight", `{"weight":3}`, 200},
		{"/api/v1/instances/corral-ollama-0/weight", `{"weight":0}`, 400},
		{"/api/v1/instances/nope/weight", `{"weight":2}`, 400},
		{"/api/v1/instances/corral-ollama-0/weight", `{"weight":`, 400},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest("PUT", tc.path, strings.NewReader(tc.body)))
		if rec.Code != tc.code {
			t.Errorf("PUT %s %s = %d %s, want %d", tc.path, tc.body, rec.Code, rec.Body, tc.code)
		}
	}
}

type fakeDoor struct{}

func (fakeDoor) Status() any {
	return map[string]any{"certificates": map[string]any{"state": "retrying", "hint": "open port 80"}}
}

// The front door's status (certificates with their last error and hint)
// is part of /api/v1/status and has an endpoint of its own, behind the
// admin token on the admin listener.
func TestAPIFrontDoorStatus(t *testing.T) {
	gin.SetMode(gin.TestMode)
	deps := Deps{Engine: fakeEngine{engine.Status{Namespace: "corral", Docker: "ok"}}, GPUs: fakeGPUs{}, FrontDoor: fakeDoor{}}
	for _, tc := range []struct {
		path, auth string
		h          http.Handler
		code       int
		want       string
	}{
		{"/api/v1/status", "", NewAPI(deps), 200, `"front_door":{"certificates":{"hint":"open port 80","state":"retrying"}}`},
		{"/api/v1/frontdoor", "", NewAPI(deps), 200, `{"certificates":{"hint":"open port 80","state":"retrying"}}`},
		{"/api/v1/frontdoor", "Bearer s3cret", adminFor(t, "s3cret", deps), 200, `"state":"retrying"`},
		{"/api/v1/frontdoor", "", adminFor(t, "s3cret", deps), 401, ""},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		tc.h.ServeHTTP(rec, req)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s (%q): %d %s, want %d with %s", tc.path, tc.auth, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
}

type fakeScheduler struct{ st SchedulerStatus }

func (f fakeScheduler) Status() SchedulerStatus { return f.st }

// The scheduler's queue and holdings are part of /api/v1/status, on the
// socket and behind the admin token; without a scheduler they are left
// out.
func TestAPISchedulerStatus(t *testing.T) {
	gin.SetMode(gin.TestMode)
	sched := fakeScheduler{SchedulerStatus{
		Queue: []QueueStatus{{Model: "llama3.2:1b", Key: "a", Waiting: 10, Oldest: 3200 * time.Millisecond}},
		Holding: map[string][]HeldModel{
			"corral-ollama-0": {{Model: "llama3.2:1b", InFlight: 2}, {Model: "qwen2.5:0.5b", Loading: true}},
			"corral-ollama-1": {},
		},
	}}
	eng := fakeEngine{engine.Status{Namespace: "corral", Docker: "ok"}}
	deps := Deps{Engine: eng, GPUs: fakeGPUs{}, Scheduler: sched}
	want := `"scheduler":{"queue":[{"model":"llama3.2:1b","key":"a","waiting":10,"oldest_wait_ns":3200000000}],` +
		`"holding":{"corral-ollama-0":[{"model":"llama3.2:1b","in_flight":2},{"model":"qwen2.5:0.5b","in_flight":0,"loading":true}],"corral-ollama-1":[]}}`
	for _, tc := range []struct {
		name, auth string
		h          http.Handler
		want       string
	}{
		{"socket", "", NewAPI(deps), want},
		{"admin", "Bearer s3cret", adminFor(t, "s3cret", deps), want},
		{"no scheduler", "", NewAPI(Deps{Engine: eng, GPUs: fakeGPUs{}}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api/v1/status", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, body)
			}
			if tc.want == "" {
				if strings.Contains(body, "scheduler") {
					t.Fatalf("body = %s, want no scheduler", body)
				}
				return
			}
			if !strings.Contains(body, tc.want) {
				t.Fatalf("body = %s\nwant %s", body, tc.want)
			}
			var rep StatusReport
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Scheduler == nil || rep.Scheduler.Queue[0].Oldest != 3200*time.Millisecond || !rep.Scheduler.Holding["corral-ollama-0"][1].Loading {
				t.Fatalf("decoded = %+v", rep.Scheduler)
			}
		})
	}
}
