package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestDataSurvivesRestart writes a note through one server and reads it
// through a second one on the same directory, as after recreating the
// container on the same volume.
func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	_, first := newTestServer(t, "SIM_DATA_DIR="+dir)

	var listing dataListing
	getJSON(t, first.URL+"/data", &listing)
	if listing.Dir != dir || strings.Count(listing.Files[startsFile], "started open-webui") != 1 {
		t.Fatalf("first listing %+v", listing)
	}
	if status, body := do(t, http.MethodPost, first.URL+"/data", strings.NewReader("kept across restarts\n")); status != http.StatusOK {
		t.Fatalf("POST /data: %d %s", status, body)
	}
	first.Close()

	_, second := newTestServer(t, "SIM_DATA_DIR="+dir)
	getJSON(t, second.URL+"/data", &listing)
	if got := listing.Files[noteFile]; got != "kept across restarts\n" {
		t.Errorf("note.txt = %q", got)
	}
	if n := strings.Count(listing.Files[startsFile], "started open-webui"); n != 2 {
		t.Errorf("starts.log has %d starts, want 2:\n%s", n, listing.Files[startsFile])
	}
	if len(listing.Files) != 2 {
		t.Errorf("files %v, want starts.log and note.txt only", listing.Files)
	}

	// A second POST replaces the note.
	do(t, http.MethodPost, second.URL+"/data", strings.NewReader("v2"))
	getJSON(t, second.URL+"/data", &listing)
	if got := listing.Files[noteFile]; got != "v2" {
		t.Errorf("note.txt = %q, want v2", got)
	}
}

func TestDataErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		env    []string
		method string
		body   string
		want   int
	}{
		{"lobechat has no data directory", []string{"SIM_ROLE=lobechat"}, http.MethodGet, "", http.StatusNotFound},
		{"nor accepts a note", []string{"SIM_ROLE=lobechat"}, http.MethodPost, "x", http.StatusNotFound},
		{"body too large", []string{"SIM_DATA_DIR=" + dir}, http.MethodPost, strings.Repeat("x", maxBody+1), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := newTestServer(t, tt.env...)
			if status, body := do(t, tt.method, ts.URL+"/data", strings.NewReader(tt.body)); status != tt.want {
				t.Errorf("status %d, want %d: %s", status, tt.want, body)
			}
		})
	}
}
