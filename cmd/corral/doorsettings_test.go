package main

import (
	"io"
	"strings"
	"testing"

	"corral/engine/store"
	"corral/ui"
)

// The stored front-door choices: checked as flags are, kept, applied at
// the next start under the flags given there, and pending until then.
func TestFrontDoorChoices(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := func(args ...string) serveConfig {
		t.Helper()
		c, err := parseServe(append([]string{"--data-dir", dir}, args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := applyStoredFrontDoor(&c, st); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := start("--chat-ui", "none")
	s := &frontDoorSettings{st: st, running: c}
	if ch := s.FrontDoorChoice(); len(ch.Pending) > 0 || ch.Domain != "" || !ch.Fixed["chat-ui"] || ch.ChatUI != "none" {
		t.Fatalf("fresh: %+v", ch)
	}
	if err := s.SetFrontDoorChoice(ui.FrontDoorChoice{Domain: "bad domain!"}); err == nil || !strings.Contains(err.Error(), "--domain") {
		t.Fatalf("bad domain: %v", err)
	}
	if err := s.SetFrontDoorChoice(ui.FrontDoorChoice{Domain: "chat.example.com", Email: "me@example.com", CA: "staging", ChatUI: "lobechat"}); err != nil {
		t.Fatal(err)
	}
	ch := s.FrontDoorChoice()
	if len(ch.Pending) == 0 || ch.Domain != "chat.example.com" || ch.ChatUI != "none" {
		t.Fatalf("saved: %+v (the chat UI is a flag: it stays)", ch)
	}
	// The next start: the stored domain, e-mail and CA; the flag's chat UI.
	c = start("--chat-ui", "none")
	if c.door.Domains != "chat.example.com" || c.door.Email != "me@example.com" || c.door.ACMECA != "staging" || c.chat.Mode != "none" {
		t.Fatalf("next start: %+v %+v", c.door, c.chat)
	}
	s = &frontDoorSettings{st: st, running: c}
	if ch := s.FrontDoorChoice(); len(ch.Pending) > 0 {
		t.Fatalf("after the start that applied them: %+v", ch)
	}
	// A start with --domain: the flag wins, the page shows it fixed.
	c = start("--domain", "other.example.com", "--email", "me@example.com")
	if c.door.Domains != "other.example.com" {
		t.Fatalf("--domain lost to the stored one: %s", c.door.Domains)
	}
}
