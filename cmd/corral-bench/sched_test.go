package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSchedBench runs the scheduling benchmark small: every policy on
// every load, with the report and its JSON. Counts, not times, are
// checked: the scheduler swaps at most half as often as random spread on
// the mixed load, and a one-model load reaches both instances.
func TestSchedBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts simulators")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "sched.json")
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"sched", "--load-delay", "100ms", "--token-interval", "2ms", "--tokens", "8",
		"--mixed-requests", "40", "--one-requests", "40", "--flood-streams", "8", "--flood-for", "2s", "--light-every", "200ms",
		"--json", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	text := stdout.String()
	t.Log(text)
	for _, want := range []string{"(a) mixed two-model load", "(b) one model on two instances", "(c) one key floods", "light key alone", "(a) mixed: swaps"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep schedReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	for _, set := range [][]runResult{rep.Mixed, rep.OneModel, rep.Flood} {
		for _, r := range set {
			if r.Failures != 0 {
				t.Errorf("%s: %d failed: %s", r.Policy, r.Failures, r.FirstFail)
			}
		}
	}
	random, sched := find(rep.Mixed, "random"), find(rep.Mixed, "scheduler")
	if random.Swaps == 0 || sched.Swaps > random.Swaps/2 {
		t.Errorf("mixed load: scheduler %d swaps, random %d", sched.Swaps, random.Swaps)
	}
	if one := find(rep.OneModel, "scheduler"); len(one.Served) != 2 {
		t.Errorf("one-model load served by %v, want both instances", one.Served)
	}
	if fl := find(rep.Flood, "scheduler"); fl.LightN == 0 {
		t.Error("the light key sent nothing during the flood")
	}
}

func TestSchedConfigValidate(t *testing.T) {
	for _, args := range [][]string{
		{"--models", "a"},
		{"--upstreams", "http://a:1"},
		{"--upstreams", "x,y"},
		{"--slots", "0"},
		{"--flood-for", "0s"},
	} {
		if _, err := parseSchedConfig(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := parseSchedConfig(nil, &bytes.Buffer{}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
