package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"corral/engine"
	"corral/engine/store"
	"corral/proxy/scheduler"
	"corral/ui"
)

func TestPrintStatus(t *testing.T) {
	instances := []engine.InstanceStatus{
		{Name: "corral-ollama-0", GPU: "GPU-a", GPUIndex: 0, Phase: engine.PhaseHealthy, Weight: 1, ContainerID: "0123456789abcdef", Image: "ollama/ollama", Endpoint: "http://10.0.0.2:11434"},
		{Name: "corral-ollama-1", GPU: "GPU-b", GPUIndex: 1, Phase: engine.PhaseHealthy, Weight: 2, ContainerID: "fedcba9876543210", Image: "ollama/ollama", Endpoint: "http://10.0.0.3:11434"},
	}
	table := []string{
		"NAME             GPU  PHASE    WEIGHT  CONTAINER     IMAGE          ENDPOINT               REASON",
		"corral-ollama-0  0    healthy  1       0123456789ab  ollama/ollama  http://10.0.0.2:11434  ",
		"corral-ollama-1  1    healthy  2       fedcba987654  ollama/ollama  http://10.0.0.3:11434  ",
	}
	lines := func(ls ...string) string { return strings.Join(ls, "\n") + "\n" }
	cases := []struct {
		name  string
		sched *ui.SchedulerStatus
		want  string
	}{
		{"no scheduler", nil, lines(table...)},
		{"nothing held, nothing waits", &ui.SchedulerStatus{Holding: map[string][]ui.HeldModel{"corral-ollama-0": {}}}, lines(table...)},
		{"holds and loads", &ui.SchedulerStatus{Holding: map[string][]ui.HeldModel{
			"corral-ollama-0": {{Model: "llama3.2:1b", InFlight: 2}, {Model: "qwen2.5:0.5b", Loading: true}},
			"corral-ollama-1": {{Model: "llama3.2:1b"}, {Model: "phi3", InFlight: 1, Loading: true}, {Model: "qwen3:8b", InFlight: 4}},
			"corral-ollama-9": {{Model: "gone"}}, // not in the engine's list: not shown
		}}, lines(
			table[0],
			table[1],
			"  holds llama3.2:1b (2 in flight); loading qwen2.5:0.5b",
			table[2],
			"  holds llama3.2:1b (idle), qwen3:8b (4 in flight); loading phi3 (1 in flight)",
		)},
		{"only loading", &ui.SchedulerStatus{Holding: map[string][]ui.HeldModel{
			"corral-ollama-1": {{Model: "qwen2.5:0.5b", Loading: true}},
		}}, lines(table[0], table[1], table[2], "  loading qwen2.5:0.5b")},
		{"queue", &ui.SchedulerStatus{
			Queue: []ui.QueueStatus{
				{Model: "llama3.2:1b", Key: "a", Waiting: 10, Oldest: 3200 * time.Millisecond},
				{Model: "llama3.2:1b", Key: "b", Waiting: 2, Oldest: 1234 * time.Millisecond},
				{Model: "llama3.2:1b", Key: "c", Waiting: 2, Oldest: 40 * time.Millisecond},
				{Model: "qwen2.5:0.5b", Key: "", Waiting: 1, Oldest: 85 * time.Millisecond},
				{Model: "qwen3:8b", Key: "b", Waiting: 1, Oldest: 245 * time.Second},
			},
			Holding: map[string][]ui.HeldModel{"corral-ollama-0": {{Model: "llama3.2:1b", InFlight: 4}}},
		}, lines(
			table[0],
			table[1],
			"  holds llama3.2:1b (4 in flight)",
			table[2],
			"",
			"Queue (16 waiting):",
			"  llama3.2:1b: 14 waiting (key a 10, key b 2, key c 2), oldest 3.2s",
			"  qwen2.5:0.5b: 1 waiting (key (none) 1), oldest 85ms",
			"  qwen3:8b: 1 waiting (key b 1), oldest 4m5s",
		)},
		{"empty entries are no queue", &ui.SchedulerStatus{Queue: []ui.QueueStatus{{Model: "m", Key: "a"}}}, lines(table...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			printStatus(&out, statusReport{Status: engine.Status{Docker: "ok", Instances: instances}, Scheduler: tc.sched})
			if got := out.String(); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestRoundWait(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{300 * time.Microsecond, "0s"},
		{1499 * time.Microsecond, "1ms"},
		{85 * time.Millisecond, "85ms"},
		{999 * time.Millisecond, "999ms"},
		{3249 * time.Millisecond, "3.2s"},
		{59 * time.Second, "59s"},
		{245*time.Second + 400*time.Millisecond, "4m5s"},
	} {
		if got := roundWait(tc.d); got != tc.want {
			t.Errorf("roundWait(%s) = %s, want %s", tc.d, got, tc.want)
		}
	}
}

type fakeScheduling struct {
	queue []scheduler.Queued
	held  map[string][]scheduler.Held
}

func (f fakeScheduling) Queue() []scheduler.Queued            { return f.queue }
func (f fakeScheduling) Holding() map[string][]scheduler.Held { return f.held }

type statusEngine struct{ st engine.Status }

func (e statusEngine) Status() engine.Status                                  { return e.st }
func (statusEngine) SetWeight(instance string, weight int) error              { return nil }
func (statusEngine) Restart(context.Context, string) error                    { return nil }
func (statusEngine) Recreate(context.Context, string) error                   { return nil }
func (statusEngine) Stop(context.Context, string) error                       { return nil }
func (statusEngine) Start(string) error                                       { return nil }
func (statusEngine) Events(string) []engine.Event                             { return nil }
func (statusEngine) Logs(context.Context, string, int, bool, io.Writer) error { return nil }

// TestStatusCommandScheduler goes from the scheduler's view through the
// API's JSON to `corral status`.
func TestStatusCommandScheduler(t *testing.T) {
	sched := fakeScheduling{
		queue: []scheduler.Queued{
			{Model: "llama3.2:1b", Consumer: "a", Count: 10, Oldest: 3200 * time.Millisecond},
			{Model: "llama3.2:1b", Consumer: "b", Count: 2, Oldest: time.Second},
		},
		held: map[string][]scheduler.Held{
			"corral-ollama-0": {{Model: "llama3.2:1b", Inflight: 2}, {Model: "qwen2.5:0.5b", Loading: true}},
		},
	}
	eng := statusEngine{engine.Status{Namespace: "corral", Docker: "ok", Instances: []engine.InstanceStatus{
		{Name: "corral-ollama-0", GPU: "GPU-a", Phase: engine.PhaseHealthy, Weight: 1},
	}}}
	dataDir := serveAPI(t, func(*store.Store) ui.Deps {
		return ui.Deps{Engine: eng, Scheduler: schedStatus{sched}}
	})
	var out bytes.Buffer
	if err := newApp(&out, &out).run(context.Background(), []string{"status", "--data-dir", dataDir}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\ncorral-ollama-0  0    healthy",
		"\n  holds llama3.2:1b (2 in flight); loading qwen2.5:0.5b\n",
		"\nQueue (12 waiting):\n  llama3.2:1b: 12 waiting (key a 10, key b 2), oldest 3.2s\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status:\n%s\nwant %q", out.String(), want)
		}
	}

	// Nothing waits, nothing held: the queue is an empty list, not null.
	rep := schedStatus{fakeScheduling{}}.Status()
	if rep.Queue == nil || rep.Holding == nil {
		t.Errorf("empty status = %#v", rep)
	}
}
