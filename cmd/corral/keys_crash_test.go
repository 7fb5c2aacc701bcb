package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"corral/engine/keys"
	"corral/engine/store"
)

// TestKeyLastUsedSurvivesKill: corral killed outright (no shutdown, no
// last flush) still has the last use of a key in its store, as of at most
// one flush interval before the kill. No Docker needed: the gateway checks
// the key before it looks for an instance.
func TestKeyLastUsedSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a flush interval")
	}
	dataDir := t.TempDir()
	p := startServe(t, dataDir, "--docker-host", "unix:///nonexistent/docker.sock", "--cpu-instances", "1")
	gw := "http://" + p.logAttr(t, "gateway listening", "addr")
	out, errOut, err := runApp(t, "keys", "create", "ci", "--data-dir", dataDir)
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut)
	}
	key := strings.TrimSpace(out)

	req, _ := http.NewRequest("POST", gw+"/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	before := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		t.Fatalf("the key was refused: %s", resp.Status)
	}
	// One flush interval, and a little for the write: then kill.
	time.Sleep(keys.DefaultFlushInterval + 2*time.Second)
	p.stop(t, syscall.SIGKILL)

	st, err := store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k, err := st.KeyByName("ci")
	if err != nil {
		t.Fatal(err)
	}
	if k.LastUsed.Before(before.Add(-time.Second)) || k.LastUsed.After(time.Now()) {
		t.Fatalf("last used after a kill = %v, want the request's time, about %v", k.LastUsed, before)
	}
}
