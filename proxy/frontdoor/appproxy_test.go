package frontdoor_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"corral/proxy/frontdoor"
)

// The chat UI's proxy follows the app to its current address, and while
// the app is not up answers a page that refreshes itself and names no
// internal address.
func TestAppProxy(t *testing.T) {
	t.Parallel()
	app := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name+" "+r.URL.Path) }))
		t.Cleanup(s.Close)
		return s
	}
	a, b := app("a"), app("b")
	var mu sync.Mutex
	state := frontdoor.AppState{Phase: "failed", Reason: "GET /health: dial tcp 172.18.0.3:8080: connect: connection refused"}
	h := frontdoor.NewAppProxy(func() frontdoor.AppState { mu.Lock(); defer mu.Unlock(); return state }, secQuiet())
	set := func(s frontdoor.AppState) { mu.Lock(); state = s; mu.Unlock() }
	get := func(accept string) (int, http.Header, string) {
		req := httptest.NewRequest("GET", "/c/1", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Header(), rec.Body.String()
	}

	code, hdr, body := get("text/html,application/xhtml+xml")
	if code != 503 || hdr.Get("Retry-After") != "5" || !strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, "The chat is not available") ||
		!strings.Contains(body, "connection refused") || strings.Contains(body, "172.18.0.3") {
		t.Fatalf("failed app, browser: %d %v\n%s", code, hdr, body)
	}
	if code, _, body := get("application/json"); code != 503 || !strings.Contains(body, "failed") {
		t.Fatalf("failed app, API client: %d %s", code, body)
	}
	set(frontdoor.AppState{Phase: "pulling", Reason: "pulling ghcr.io/open-webui/open-webui:main: 40% of 1.2 GiB"})
	if _, _, body := get("text/html"); !strings.Contains(body, "being installed") || !strings.Contains(body, "40% of 1.2 GiB") {
		t.Fatalf("pulling: %s", body)
	}
	set(frontdoor.AppState{URL: a.URL, Healthy: true, Phase: "healthy"})
	if code, _, body := get("text/html"); code != 200 || body != "a /c/1" {
		t.Fatalf("healthy on a: %d %s", code, body)
	}
	set(frontdoor.AppState{URL: b.URL, Healthy: true, Phase: "healthy"})
	if code, _, body := get("text/html"); code != 200 || body != "b /c/1" {
		t.Fatalf("recreated on b: %d %s", code, body)
	}
}
