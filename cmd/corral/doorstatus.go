package main

import (
	"corral/proxy/certs"
	"corral/proxy/frontdoor"
)

// doorStatus shows the front door in the admin API and `corral status`.
type doorStatus struct {
	door  *frontdoor.Server
	certs *certs.Manager // nil without a domain
}

// DoorReport is the front door's part of the status.
type DoorReport struct {
	Listeners    map[string]string `json:"listeners"`
	Routes       []string          `json:"routes"`
	OpenConns    int               `json:"open_connections"`
	Certificates *certs.Status     `json:"certificates,omitempty"`
}

func (d *doorStatus) Status() any {
	rep := DoorReport{Listeners: map[string]string{}, OpenConns: d.door.OpenConns()}
	for _, name := range []string{"http", "https", "redirect"} {
		if a := d.door.Addr(name); a != nil {
			rep.Listeners[name] = a.String()
		}
	}
	for _, r := range d.door.Routes() {
		rep.Routes = append(rep.Routes, r.String())
	}
	if d.certs != nil {
		st := d.certs.Status()
		rep.Certificates = &st
	}
	return rep
}
