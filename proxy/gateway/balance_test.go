package gateway

import (
	"math/rand/v2"
	"testing"
)

func TestPick(t *testing.T) {
	cases := []struct {
		name  string
		cands []Candidate
		want  []int // acceptable picks
	}{
		{"none", nil, []int{-1}},
		{"loaded wins over idle unloaded", []Candidate{{Index: 0}, {Index: 1, Loaded: true, Inflight: 0}}, []int{1}},
		{"loaded but busy spreads to the idle one", []Candidate{{Index: 0}, {Index: 1, Loaded: true, Inflight: 1, Parallel: 1}}, []int{0}},
		{"busy threshold follows parallel", []Candidate{{Index: 0}, {Index: 1, Loaded: true, Inflight: 3, Parallel: 4}}, []int{1}},
		{"among loaded fewest in flight", []Candidate{{Index: 0, Loaded: true, Inflight: 2, Parallel: 4}, {Index: 1, Loaded: true, Inflight: 1, Parallel: 4}}, []int{1}},
		{"all busy: least loaded, loaded wins ties", []Candidate{{Index: 0, Inflight: 1}, {Index: 1, Loaded: true, Inflight: 1, Parallel: 1}, {Index: 2, Inflight: 2}}, []int{1}},
		{"all busy: unloaded with less load", []Candidate{{Index: 0, Inflight: 0}, {Index: 1, Loaded: true, Inflight: 3, Parallel: 1}}, []int{0}},
		{"loaded nowhere: most free memory", []Candidate{{Index: 0, FreeMemory: 8 << 30}, {Index: 1, FreeMemory: 15 << 30, Inflight: 3}}, []int{1}},
		{"loaded nowhere, equal memory: fewest in flight", []Candidate{{Index: 0, Inflight: 2}, {Index: 1, Inflight: 1}}, []int{1}},
		{"weight doubles capacity", []Candidate{{Index: 0, Inflight: 2, Weight: 1}, {Index: 1, Inflight: 3, Weight: 2}}, []int{1}},
		{"ties random", []Candidate{{Index: 0}, {Index: 1}, {Index: 2}}, []int{0, 1, 2}},
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 20 {
				got := Pick(tc.cands, rnd)
				ok := false
				for _, w := range tc.want {
					ok = ok || got == w
				}
				if !ok {
					t.Fatalf("Pick = %d, want one of %v", got, tc.want)
				}
			}
		})
	}
}

// TestPickTiesAreFair: equal candidates each get about a third.
func TestPickTiesAreFair(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	cands := []Candidate{{Index: 0}, {Index: 1}, {Index: 2}}
	counts := make([]int, 3)
	for range 3000 {
		counts[Pick(cands, rnd)]++
	}
	for i, n := range counts {
		if n < 800 || n > 1200 {
			t.Fatalf("candidate %d picked %d of 3000 times: %v", i, n, counts)
		}
	}
}

// TestPickKeepsInflightLevel simulates uniform load on 3 instances: each
// pick adds one in flight, each completion removes a random one. The
// spread never exceeds 1.
func TestPickKeepsInflightLevel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	inflight := []int64{0, 0, 0}
	for step := range 5000 {
		if step%3 != 2 || inflight[0]+inflight[1]+inflight[2] == 0 {
			cands := make([]Candidate, 3)
			for i := range cands {
				cands[i] = Candidate{Index: i, Loaded: true, Parallel: 64, Inflight: inflight[i]}
			}
			inflight[Pick(cands, rnd)]++
		} else {
			// The least loaded finish too; complete on the busiest to model
			// fair service.
			j := 0
			for i := range inflight {
				if inflight[i] > inflight[j] {
					j = i
				}
			}
			inflight[j]--
		}
		lo, hi := inflight[0], inflight[0]
		for _, v := range inflight {
			lo, hi = min(lo, v), max(hi, v)
		}
		if hi-lo > 1 {
			t.Fatalf("step %d: in flight %v spread more than 1", step, inflight)
		}
	}
}

func TestCanonicalModel(t *testing.T) {
	cases := map[string]string{
		"llama3.2":                              "llama3.2:latest",
		"llama3.2:1b":                           "llama3.2:1b",
		"library/llama3.2":                      "llama3.2:latest",
		"registry.ollama.ai/library/qwen2.5:7b": "qwen2.5:7b",
		"hf.co/org/model":                       "hf.co/org/model:latest",
		"hf.co/org/model:Q4_K_M":                "hf.co/org/model:Q4_K_M",
		"localhost:5000/m":                      "localhost:5000/m:latest",
		" tinyllama ":                           "tinyllama:latest",
		"":                                      "",
	}
	for in, want := range cases {
		if got := CanonicalModel(in); got != want {
			t.Errorf("CanonicalModel(%q) = %q, want %q", in, got, want)
		}
	}
}
