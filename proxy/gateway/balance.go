package gateway

import (
	"math/rand/v2"
)

// Candidate is one routable upstream at the moment of choosing.
type Candidate struct {
	Index      int // into the snapshot
	Loaded     bool
	Inflight   int64
	Weight     int
	Parallel   int
	FreeMemory uint64
}

// busy: a loaded model that already serves as many requests as it can in
// parallel would only queue another one.
func (c Candidate) busy() bool {
	return c.Inflight >= int64(max(c.Parallel, 1)*max(c.Weight, 1))
}

// less orders by load per unit of weight: a/wa < b/wb without division.
func lessLoaded(a, b Candidate) int {
	l := a.Inflight*int64(max(b.Weight, 1)) - b.Inflight*int64(max(a.Weight, 1))
	switch {
	case l < 0:
		return -1
	case l > 0:
		return 1
	}
	return 0
}

// Pick chooses among candidates that are healthy and have the model:
//
//  1. where the model is loaded and not busy: fewest in flight per weight;
//  2. else, if it is loaded somewhere: fewest in flight per weight over all,
//     loaded ones winning ties (a cold load costs more than a short queue);
//  3. loaded nowhere: the most free memory, then fewest in flight.
//
// Remaining ties are broken at random so equal instances share the load.
// It returns -1 for no candidates.
func Pick(cands []Candidate, rnd *rand.Rand) int {
	if len(cands) == 0 {
		return -1
	}
	anyLoaded, loadedIdle := false, false
	for _, c := range cands {
		if c.Loaded {
			anyLoaded = true
			if !c.busy() {
				loadedIdle = true
			}
		}
	}
	var cmp func(a, b Candidate) int
	switch {
	case loadedIdle:
		cmp = func(a, b Candidate) int {
			ai, bi := a.Loaded && !a.busy(), b.Loaded && !b.busy()
			if ai != bi {
				if ai {
					return -1
				}
				return 1
			}
			return lessLoaded(a, b)
		}
	case anyLoaded:
		cmp = func(a, b Candidate) int {
			if c := lessLoaded(a, b); c != 0 {
				return c
			}
			if a.Loaded != b.Loaded {
				if a.Loaded {
					return -1
				}
				return 1
			}
			return 0
		}
	default:
		cmp = func(a, b Candidate) int {
			if a.FreeMemory != b.FreeMemory {
				if a.FreeMemory > b.FreeMemory {
					return -1
				}
				return 1
			}
			return lessLoaded(a, b)
		}
	}
	best, ties := 0, 1
	for i := 1; i < len(cands); i++ {
		switch c := cmp(cands[i], cands[best]); {
		case c < 0:
			best, ties = i, 1
		case c == 0:
			// Reservoir sampling keeps each tied candidate equally likely.
			ties++
			if rnd.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return cands[best].Index
}
