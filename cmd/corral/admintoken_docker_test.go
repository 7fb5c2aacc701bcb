package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestAdminTokenRotate: corral admin-token prints the token the admin
// listener takes; --rotate gives a new one over the control socket and
// the old one stops working at once.
func TestAdminTokenRotate(t *testing.T) {
	f := startFleet(t, 1, "--admin-addr", "127.0.0.1:0")
	t.Parallel()
	admin := "http://" + f.logAttr(t, "admin API listening", "addr")
	status := func(token string) int {
		req, _ := http.NewRequest("GET", admin+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	out, err := f.cli(t, "admin-token")
	old := strings.TrimSpace(out)
	if err != nil || old == "" || status(old) != 200 {
		t.Fatalf("admin-token: %q %v", out, err)
	}
	out, err = f.cli(t, "admin-token", "--rotate")
	fresh := strings.TrimSpace(out)
	if err != nil || fresh == "" || fresh == old {
		t.Fatalf("admin-token --rotate: %q %v", out, err)
	}
	if c := status(old); c != http.StatusUnauthorized {
		t.Fatalf("the old token after --rotate: %d", c)
	}
	if c := status(fresh); c != 200 {
		t.Fatalf("the new token: %d", c)
	}
	if out, _ := f.cli(t, "admin-token"); strings.TrimSpace(out) != fresh {
		t.Fatalf("admin-token after --rotate prints %q", out)
	}
}
