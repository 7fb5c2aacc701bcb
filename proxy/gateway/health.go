package gateway

import (
	"time"
)

// Passive health: the gateway's own record of each instance's answers,
// between the engine's active probes. Failures in a row eject an
// instance for a back-off; a success, or the engine seeing it come back,
// forgets them.

// ejected reports whether passive health has taken the upstream out.
func (st *upstreamState) ejected(now time.Time) bool {
	return st.ejectedUntil.Load() > now.UnixNano()
}

// failed records a failed attempt on st with the gateway's ejection
// settings.
func (g *Gateway) failed(st *upstreamState) {
	st.failure(g.now(), g.cfg.EjectAfter, g.cfg.EjectFor, g.cfg.MaxEject)
}

// failure records a failed attempt; after ejectAfter in a row the upstream
// is ejected for a back-off that doubles with each ejection.
func (st *upstreamState) failure(now time.Time, ejectAfter int, base, maxEject time.Duration) {
	st.lastFailure.Store(now.UnixNano())
	if int(st.fails.Add(1)) < ejectAfter {
		return
	}
	st.fails.Store(0)
	n := st.ejections.Add(1)
	d := min(base<<min(n-1, 16), maxEject)
	st.ejectedUntil.Store(now.Add(d).UnixNano())
}

// healedSince forgets passive failures and ejection older than the
// engine's latest healthy period, which began at since: the engine saw the
// instance fail and come back (a restart, say), and that active check is
// fresher than the gateway's record. The gateway need not have seen it
// down in between.
func (st *upstreamState) healedSince(since time.Time) {
	if since.IsZero() || st.lastFailure.Load() >= since.UnixNano() {
		return
	}
	if st.fails.Load() != 0 || st.ejectedUntil.Load() != 0 {
		st.fails.Store(0)
		st.ejections.Store(0)
		st.ejectedUntil.Store(0)
	}
}

// success records an answer below 500: the instance is well.
func (st *upstreamState) success() {
	st.fails.Store(0)
	st.ejections.Store(0)
}
