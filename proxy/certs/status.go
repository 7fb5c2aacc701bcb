package certs

import (
	"slices"
	"time"
)

// State is where the certificates stand.
type State string

const (
	StateStarting  State = "starting"
	StateObtaining State = "obtaining" // an order is under way
	StateValid     State = "valid"     // every name has a certificate
	StateRetrying  State = "retrying"  // the last attempt failed; certmagic tries again with back-off
)

// Where a certificate comes from.
const (
	SourceACME  = "acme"
	SourceFiles = "files"
)

// Status is what `corral status` and the admin API show.
type Status struct {
	Names        []string      `json:"names"`
	Source       string        `json:"source"`
	CA           string        `json:"ca,omitempty"`
	State        State         `json:"state"`
	Certificates []Certificate `json:"certificates"`
	LastError    string        `json:"last_error,omitempty"`
	LastErrorAt  time.Time     `json:"last_error_at,omitzero"`
	Challenge    string        `json:"failing_challenge,omitempty"` // http-01 or tls-alpn-01
	Hint         string        `json:"hint,omitempty"`
	Obtained     int           `json:"obtained"` // certificates obtained or renewed since start
}

// Certificate is one certificate in service.
type Certificate struct {
	Names       []string  `json:"names"`
	Issuer      string    `json:"issuer"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	NextRenewal time.Time `json:"next_renewal,omitzero"`
}

// Status reports the certificates in service and the last failure.
func (m *Manager) Status() Status {
	m.mu.Lock()
	st := m.st
	st.Names = slices.Clone(st.Names)
	m.mu.Unlock()
	seen := map[string]bool{}
	for _, d := range m.cfg.Domains {
		for _, c := range m.cache.AllMatchingCertificates(d) {
			if c.Leaf == nil || seen[c.Hash()] {
				continue
			}
			seen[c.Hash()] = true
			cs := Certificate{Names: c.Names, Issuer: c.Leaf.Issuer.String(), NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter}
			if m.cfg.CertFile == "" {
				// certmagic renews once this share of the lifetime is left
				// (a third by default), unless the CA's renewal info says
				// sooner.
				ratio := m.cfg.RenewalRatio
				if ratio <= 0 {
					ratio = 1.0 / 3
				}
				life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
				cs.NextRenewal = c.Leaf.NotAfter.Add(-time.Duration(float64(life) * ratio))
			}
			st.Certificates = append(st.Certificates, cs)
		}
	}
	// A certificate another holder of the store obtained, or one loaded
	// from it, comes without an event of ours.
	if (st.State == StateStarting || st.State == StateObtaining) && m.haveAll() {
		st.State = StateValid
	}
	return st
}
