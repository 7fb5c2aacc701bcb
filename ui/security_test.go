package ui

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine"
)

// After a rotation the old token and every session are refused, the new
// token works and is in the token file; with a token given as a flag
// (no file) rotation says what to do instead.
func TestRotateTokenEndsSessions(t *testing.T) {
	gin.SetMode(gin.TestMode)
	file := filepath.Join(t.TempDir(), "admin-token")
	os.WriteFile(file, []byte(testToken+"\n"), 0o600)
	h, err := NewAdmin(AdminConfig{Token: testToken, TokenFile: file, Logger: slog.New(slog.DiscardHandler)},
		Deps{Engine: fakeEngine{engine.Status{}}, GPUs: fakeGPUs{}, Models: &fakeModels{}})
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAdmin{h: h, now: time.Now()}
	cookie, _ := ta.signIn(t)
	bearer := func(tok string) int {
		req := httptest.NewRequest("GET", "/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return ta.do(req).Code
	}
	// Rotated through the API, as corral admin-token --rotate does over
	// the control socket.
	req := httptest.NewRequest("POST", "/api/v1/admin-token/rotate", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := ta.do(req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"token":"`) {
		t.Fatalf("rotate: %d %s", rec.Code, rec.Body)
	}
	raw, _ := os.ReadFile(file)
	fresh := strings.TrimSpace(string(raw))
	if fresh == testToken || !strings.Contains(rec.Body.String(), fresh) {
		t.Fatalf("token file %q after rotating: %s", fresh, rec.Body)
	}
	page := httptest.NewRequest("GET", "/models", nil)
	page.AddCookie(cookie)
	if rec := ta.do(page); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Fatalf("the old session after rotating: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if c := bearer(testToken); c != http.StatusUnauthorized {
		t.Fatalf("the old token after rotating: %d", c)
	}
	if c := bearer(fresh); c != 200 {
		t.Fatalf("the new token: %d", c)
	}

	flagged, err := NewAdmin(AdminConfig{Token: testToken, Logger: slog.New(slog.DiscardHandler)}, Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := flagged.RotateToken(); err == nil || !strings.Contains(err.Error(), "--admin-token") {
		t.Fatalf("rotating a flag's token: %v", err)
	}
}

// The tenth wrong token in a minute, by form or as a bearer, makes the
// address wait (429 with Retry-After), even with the right token; the
// wait ends; another address is not held back.
func TestWrongTokensAreSlowed(t *testing.T) {
	ta := newTestAdmin(t)
	bearer := func(tok, addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.RemoteAddr = addr
		return ta.do(req)
	}
	for i := range guessLimit - 5 {
		if rec := bearer("guess", "198.51.100.7:4000"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d", i+1, rec.Code)
		}
	}
	for i := range 5 {
		req := loginRequest("guess", "/models")
		req.RemoteAddr = "198.51.100.7:4001"
		if rec := ta.do(req); rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong sign-in %d: %d", i+1, rec.Code)
		}
	}
	rec := bearer(testToken, "198.51.100.7:4002")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), "too many wrong admin tokens") {
		t.Fatalf("after %d wrong tokens: %d %v %s", guessLimit, rec.Code, rec.Header(), rec.Body)
	}
	req := loginRequest(testToken, "/models")
	req.RemoteAddr = "198.51.100.7:4003"
	if rec := ta.do(req); rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "Too many wrong tokens") {
		t.Fatalf("sign-in while waiting: %d %s", rec.Code, rec.Body)
	}
	if rec := bearer(testToken, "203.0.113.5:4000"); rec.Code != 200 {
		t.Fatalf("another address: %d", rec.Code)
	}
	ta.advance(time.Second)
	if rec := bearer(testToken, "198.51.100.7:4004"); rec.Code != 200 {
		t.Fatalf("after the wait: %d %s", rec.Code, rec.Body)
	}
}

// An unknown page is an HTML 404 in the layout for a signed-in browser;
// a browser that is not signed in is sent to sign in first; a script
// still gets the JSON 401.
func TestUnknownPage(t *testing.T) {
	ta := newTestAdmin(t)
	cookie, _ := ta.signIn(t)
	req := httptest.NewRequest("GET", "/no/such/page", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.AddCookie(cookie)
	rec := ta.do(req)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "No such page") || !strings.Contains(rec.Body.String(), `href="/models"`) ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") || rec.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("signed in: %d %v\n%s", rec.Code, rec.Header(), rec.Body)
	}
	req = httptest.NewRequest("GET", "/no/such/page", nil)
	req.Header.Set("Accept", "text/html")
	if rec := ta.do(req); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login?next=") {
		t.Fatalf("not signed in: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	req = httptest.NewRequest("GET", "/no/such/page", nil)
	if rec := ta.do(req); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "admin token required") {
		t.Fatalf("a script: %d %s", rec.Code, rec.Body)
	}
}
