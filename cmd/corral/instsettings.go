package main

import (
	"fmt"
	"sync"
	"syscall"

	"corral/engine"
	"corral/engine/store"
	"corral/gpu"
	"corral/proxy/certs"
	"corral/ui"
)

// instanceSettings changes what every instance runs with while serving:
// stored first (so a restart keeps it), then rolled out by the engine one
// instance at a time. Which GPUs and how many CPU instances stay serve's
// flags: changing them changes which instances exist.
type instanceSettings struct {
	st        *store.Store
	eng       *engine.Engine
	inv       gpu.Inventory
	namespace string

	mu  sync.Mutex
	cur engine.Settings
}

func (s *instanceSettings) InstanceSettings() engine.Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *instanceSettings) SetInstanceSettings(n engine.Settings) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.GPUs, n.CPUInstances = s.cur.GPUs, s.cur.CPUInstances
	if err := n.Validate(); err != nil {
		return err
	}
	specs, err := engine.Plan(s.namespace, n, s.inv)
	if err != nil {
		return err
	}
	if err := engine.SaveSettings(s.st, n); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if err := s.st.ReplaceInstances(specs); err != nil {
		return fmt.Errorf("save instances: %w", err)
	}
	if err := s.eng.SetInstances(specs); err != nil {
		return err
	}
	s.cur = n
	return nil
}

// certReport words the certificate manager's status for the pages.
type certReport struct{ m *certs.Manager }

func (c certReport) CertReport() (ui.CertReport, bool) {
	if c.m == nil {
		return ui.CertReport{}, false
	}
	st := c.m.Status()
	r := ui.CertReport{Names: st.Names, Source: st.Source, CA: st.CA, State: string(st.State), LastError: st.LastError, Hint: st.Hint}
	for _, cert := range st.Certificates {
		if r.NotAfter.IsZero() || cert.NotAfter.Before(r.NotAfter) {
			r.NotAfter = cert.NotAfter
		}
	}
	return r, true
}

// dataDisk reports the free space where the data directory lives.
func dataDisk(dir string) func() (ui.DiskReport, error) {
	return func() (ui.DiskReport, error) {
		var fs syscall.Statfs_t
		if err := syscall.Statfs(dir, &fs); err != nil {
			return ui.DiskReport{}, fmt.Errorf("statfs %s: %w", dir, err)
		}
		return ui.DiskReport{Path: dir, Free: fs.Bavail * uint64(fs.Bsize), Total: fs.Blocks * uint64(fs.Bsize)}, nil
	}
}
