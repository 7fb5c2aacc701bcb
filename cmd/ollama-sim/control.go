package main

import (
	"io"
	"net/http"
)

// The /_sim control API, for tests:
//
//	GET  /_sim/config   the knobs (simConfig JSON)
//	POST /_sim/config   partial update: only the fields sent change; unknown
//	                    fields or invalid values answer 400 and change nothing
//	GET  /_sim/stats    counters (statsSnapshot JSON)
//	POST /_sim/reset    zero the counters
//	POST /_sim/exit     exit with status 1 right after answering

func (s *server) handleGetConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.sim.get())
}

func (s *server) handleSetConfig(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	cfg, err := s.sim.update(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.log.Info("simulation config changed", "config", string(body))
	writeJSON(w, http.StatusOK, cfg)
}

func (s *server) handleStats(w http.ResponseWriter, r *http.Request) {
	snap := s.stats.snapshot()
	snap.Instance = s.instance
	snap.Version = s.cfg.Version
	snap.Loaded = []string{}
	for _, l := range s.sched.list() {
		snap.Loaded = append(snap.Loaded, l.model.name.short())
	}
	writeJSON(w, http.StatusOK, snap)
}

func (s *server) handleReset(w http.ResponseWriter, r *http.Request) {
	s.stats.reset(s.clock.Now())
	writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
}

func (s *server) handleExit(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("exiting on request", "code", 1)
	writeJSON(w, http.StatusOK, map[string]string{"status": "exiting"})
	s.exitSoon()
}
