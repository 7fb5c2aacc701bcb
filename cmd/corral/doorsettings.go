package main

import (
	"errors"
	"fmt"
	"sync"

	"corral/engine/store"
	"corral/ui"
)

// frontDoorSetting keeps the domain, ACME e-mail and CA, and the chat UI
// chosen on the admin's settings page. They apply when serve starts; a
// flag (or its CORRAL_* variable) given at start wins over them.
const frontDoorSetting = "front_door"

// frontDoorField ties one choice to its serve flag.
type frontDoorField struct {
	flag   string
	cfg    func(*serveConfig) *string
	choice func(*ui.FrontDoorChoice) *string
}

func frontDoorFields() []frontDoorField {
	return []frontDoorField{
		{"domain", func(c *serveConfig) *string { return &c.door.Domains }, func(f *ui.FrontDoorChoice) *string { return &f.Domain }},
		{"email", func(c *serveConfig) *string { return &c.door.Email }, func(f *ui.FrontDoorChoice) *string { return &f.Email }},
		{"acme-ca", func(c *serveConfig) *string { return &c.door.ACMECA }, func(f *ui.FrontDoorChoice) *string { return &f.CA }},
		{"chat-ui", func(c *serveConfig) *string { return &c.chat.Mode }, func(f *ui.FrontDoorChoice) *string { return &f.ChatUI }},
	}
}

func loadFrontDoor(st *store.Store) (ui.FrontDoorChoice, bool, error) {
	var ch ui.FrontDoorChoice
	err := st.Setting(frontDoorSetting, &ch)
	if errors.Is(err, store.ErrNotFound) {
		return ch, false, nil
	}
	return ch, err == nil, err
}

// applyStoredFrontDoor lays the stored choices under the flags: each one
// the user did not give at start takes the stored value.
func applyStoredFrontDoor(c *serveConfig, st *store.Store) error {
	stored, ok, err := loadFrontDoor(st)
	if err != nil || !ok {
		return err
	}
	for _, f := range frontDoorFields() {
		if !c.explicit[f.flag] {
			*f.cfg(c) = *f.choice(&stored)
		}
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("the domain or chat UI chosen on the admin's settings page: %w (give the flag to override it)", err)
	}
	return nil
}

// frontDoorSettings is the settings page's view of those choices.
type frontDoorSettings struct {
	st      *store.Store
	running serveConfig // as this serve started
	restart func()      // asks serve to start again in place

	mu sync.Mutex
}

func (s *frontDoorSettings) FrontDoorChoice() ui.FrontDoorChoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok, err := loadFrontDoor(s.st)
	if err != nil || !ok {
		ch = ui.FrontDoorChoice{}
		for _, f := range frontDoorFields() {
			*f.choice(&ch) = *f.cfg(&s.running)
		}
	}
	ch.Fixed = map[string]bool{}
	for _, f := range frontDoorFields() {
		if s.running.explicit[f.flag] {
			ch.Fixed[f.flag] = true
			*f.choice(&ch) = *f.cfg(&s.running)
		}
	}
	ch.Pending = s.pendingLocked(ch)
	return ch
}

// pendingLocked names the stored choices that differ from what runs.
func (s *frontDoorSettings) pendingLocked(ch ui.FrontDoorChoice) []string {
	var out []string
	for _, f := range frontDoorFields() {
		if *f.choice(&ch) != *f.cfg(&s.running) {
			out = append(out, f.flag)
		}
	}
	return out
}

// SetFrontDoorChoice checks the choices as serve's flags would be
// checked, then stores them; nothing changes when one is wrong.
func (s *frontDoorSettings) SetFrontDoorChoice(ch ui.FrontDoorChoice) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.running
	for _, f := range frontDoorFields() {
		if s.running.explicit[f.flag] {
			*f.choice(&ch) = *f.cfg(&s.running)
		}
		*f.cfg(&next) = *f.choice(&ch)
	}
	if err := next.Validate(); err != nil {
		return err
	}
	ch.Fixed, ch.Pending = nil, nil
	return s.st.PutSettings(map[string]any{frontDoorSetting: ch})
}

func (s *frontDoorSettings) Restart() { s.restart() }
