package main

import (
	"corral/proxy/scheduler"
	"corral/ui"
)

// scheduling is what the status reads of the gateway's scheduler;
// *gateway.Gateway is one.
type scheduling interface {
	Queue() []scheduler.Queued
	Holding() map[string][]scheduler.Held
}

// schedStatus shows corral's queue and what each instance holds in the
// admin API and `corral status`.
type schedStatus struct{ s scheduling }

var _ ui.Scheduler = schedStatus{}

func (s schedStatus) Status() ui.SchedulerStatus {
	queue := s.s.Queue()
	rep := ui.SchedulerStatus{Queue: make([]ui.QueueStatus, len(queue)), Holding: map[string][]ui.HeldModel{}}
	for i, q := range queue {
		rep.Queue[i] = ui.QueueStatus{Model: q.Model, Key: q.Consumer, Waiting: q.Count, Oldest: q.Oldest}
	}
	for name, held := range s.s.Holding() {
		list := make([]ui.HeldModel, len(held))
		for i, h := range held {
			list[i] = ui.HeldModel{Model: h.Model, InFlight: h.Inflight, Loading: h.Loading}
		}
		rep.Holding[name] = list
	}
	return rep
}
