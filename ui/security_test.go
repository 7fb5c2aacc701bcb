package ui

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine"
	"corral/engine/usage"
	"corral/gpu"
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

// The overview shows each instance beside its GPU with its figures, what
// it holds, the chat UI, and alerts for what needs attention.
func TestOverviewPage(t *testing.T) {
	ta := newTestAdmin(t)
	cookie, _ := ta.signIn(t)
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(cookie)
	rec := ta.do(req)
	body := htmlUnescape(rec.Body.String())
	for _, want := range []string{"Overview", "1 of 2 instances healthy", "corral-ollama-0", "corral-ollama-1", "is unhealthy",
		`aria-current="page">Overview`, "No chat UI"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if rec.Code != 200 {
		t.Fatalf("overview: %d\n%s", rec.Code, body)
	}
}

type figuresGPUs struct{}

func (figuresGPUs) Inventory() gpu.Inventory {
	return gpu.Inventory{Devices: []gpu.Device{
		{Index: 0, UUID: "GPU-1", Name: "NVIDIA H200", MemoryTotal: 150e9},
		{Index: 1, UUID: "GPU-2", Name: "NVIDIA H200", MemoryTotal: 150e9},
	}}
}
func (figuresGPUs) Latest() []gpu.Metrics {
	return []gpu.Metrics{{UUID: "GPU-1", MemoryUsed: 75e9, MemoryTotal: 150e9, UtilizationGPU: 87, TemperatureC: 61, PowerW: 412, PowerLimitW: 700}}
}

type fixedSched struct{ st SchedulerStatus }

func (f fixedSched) Status() SchedulerStatus { return f.st }

func TestOverviewFigures(t *testing.T) {
	gin.SetMode(gin.TestMode)
	st := engine.Status{Docker: "ok", Instances: []engine.InstanceStatus{
		{Name: "corral-ollama-0", GPU: "GPU-1", Phase: engine.PhaseHealthy, Reason: "ollama 0.17.4"},
		{Name: "corral-ollama-1", GPU: "GPU-9", Phase: engine.PhaseFailed, Reason: "crash loop: exited 3 times in 10m0s (last: exit code 1)"},
	}, Apps: []engine.AppStatus{{Name: "corral-chatui", Phase: engine.PhasePulling, Reason: "pulling ghcr.io/open-webui/open-webui:main: 40% of 1.2 GiB"}}}
	sched := fixedSched{SchedulerStatus{Holding: map[string][]HeldModel{"corral-ollama-0": {{Model: "llama3.2:1b", InFlight: 2}}},
		Queue: []QueueStatus{{Model: "llama3.2:1b", Key: "alice", Waiting: 3}}}}
	h, err := NewAdmin(AdminConfig{Token: testToken, Logger: slog.New(slog.DiscardHandler)},
		Deps{Engine: fakeEngine{st}, GPUs: figuresGPUs{}, Models: &fakeModels{}, Scheduler: sched})
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAdmin{h: h, now: time.Now()}
	cookie, _ := ta.signIn(t)
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(cookie)
	body := htmlUnescape(ta.do(req).Body.String())
	for _, want := range []string{"0 · NVIDIA H200", "75.0 GB of 150 GB", "87%", "61 °C", "412 W of 700 W", "llama3.2:1b (2 in flight)",
		"3 requests waiting", "corral-ollama-1 is crash-looping", "GPU GPU-9 is missing", "GPUs without an instance: 1 · NVIDIA H200",
		"corral-chatui", "40% of 1.2 GiB"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// The keys page: a key made by the form shows its secret once, and that
// secret works; a bad name says why and keeps what was typed; revoking
// asks first, then the key is refused.
func TestKeysPage(t *testing.T) {
	d, m := newKeysDeps(t)
	d.Models = &fakeModels{}
	h, err := NewAdmin(AdminConfig{Token: testToken, Logger: slog.New(slog.DiscardHandler)}, d)
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAdmin{h: h, now: time.Now()}
	cookie, csrf := ta.signIn(t)
	post := func(path string, form url.Values) *httptest.ResponseRecorder {
		form.Set("csrf_token", csrf)
		req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(cookie)
		return ta.do(req)
	}
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(cookie)
		return ta.do(req)
	}
	if body := get("/keys").Body.String(); !strings.Contains(body, "No keys yet") {
		t.Fatalf("empty keys page:\n%s", body)
	}
	rec := post("/keys", url.Values{"name": {"alice"}, "note": {"laptop"}, "days": {"30"}, "models": {"llama3.2:1b, qwen2.5:0.5b"}})
	secret := regexp.MustCompile(`<code id="new-key">(crl_[^<]+)</code>`).FindStringSubmatch(rec.Body.String())
	if rec.Code != 200 || secret == nil {
		t.Fatalf("make a key: %d\n%s", rec.Code, rec.Body)
	}
	if name, err := m.Authorize(context.Background(), secret[1], "llama3.2:1b"); err != nil || name != "alice" {
		t.Fatalf("the shown secret: %q %v", name, err)
	}
	if body := get("/keys").Body.String(); strings.Contains(body, secret[1]) || !strings.Contains(body, "llama3.2:1b, qwen2.5:0.5b") {
		t.Fatalf("the list shows the secret again, or not the models:\n%s", body)
	}
	rec = post("/keys", url.Values{"name": {"bad name!"}, "note": {"kept"}})
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `class="alert error"`) || !strings.Contains(rec.Body.String(), `value="kept"`) {
		t.Fatalf("bad name: %d\n%s", rec.Code, rec.Body)
	}
	// Limits: the form shows what is set, a bad number says why, a good
	// change is in force.
	if body := get("/keys/alice/limits").Body.String(); !strings.Contains(body, "Limits of alice") || !strings.Contains(body, `name="tokens_per_day"`) {
		t.Fatalf("limits form:\n%s", body)
	}
	if rec := post("/keys/alice/limits", url.Values{"tokens_per_day": {"lots"}}); rec.Code != 400 || !strings.Contains(rec.Body.String(), "tokens per day: give a whole number") {
		t.Fatalf("bad limit: %d %s", rec.Code, rec.Body)
	}
	if rec := post("/keys/alice/limits", url.Values{"tokens_per_day": {"50000"}, "requests_per_minute": {"60"}, "batch": {"on"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("limits: %d %s", rec.Code, rec.Body)
	}
	for _, k := range m.List() {
		if k.Name == "alice" && (k.Limits.TokensPerDay != 50000 || k.Limits.RequestsPerMinute != 60 || !k.Limits.Batch) {
			t.Fatalf("limits kept: %+v", k.Limits)
		}
	}
	if body := get("/keys?changed=alice").Body.String(); !strings.Contains(body, "rpm=60 tpd=50000 batch") || !strings.Contains(body, "limits of alice are saved") {
		t.Fatalf("keys list after limits:\n%s", body)
	}
	if body := get("/keys/alice/revoke").Body.String(); !strings.Contains(body, "Revoke alice?") {
		t.Fatalf("revoke asks first:\n%s", body)
	}
	rec = post("/keys/alice/revoke", url.Values{})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/keys?revoked=alice" {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if _, err := m.Authorize(context.Background(), secret[1], ""); err == nil {
		t.Fatal("a revoked key still works")
	}
	// Without the page's CSRF token the form is refused.
	req := httptest.NewRequest("POST", "/keys", strings.NewReader("name=mallory"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	if rec := ta.do(req); rec.Code != http.StatusForbidden {
		t.Fatalf("a form without the CSRF token: %d", rec.Code)
	}
}

type pageUsage struct{}

func (pageUsage) Query(_ context.Context, q usage.Query) ([]usage.Row, error) {
	today := time.Now().UTC().Format(time.DateOnly)
	switch q.By {
	case usage.ByDay:
		return []usage.Row{{Group: today, Requests: 3, PromptTokens: 30, CompletionTokens: 70}}, nil
	case usage.ByUser:
		return []usage.Row{{Group: "ann@example.com", Requests: 2, PromptTokens: 20, CompletionTokens: 50, Queued: 3 * time.Second}, {Group: "", Requests: 1, PromptTokens: 10, CompletionTokens: 20}}, nil
	}
	return []usage.Row{{Group: "alice", Requests: 3, PromptTokens: 30, CompletionTokens: 70, Errors: 1}}, nil
}

// The usage page: a chart of tokens per day, a table by the chosen
// grouping with a total, CSV of the same, a bad choice said plainly.
func TestUsagePage(t *testing.T) {
	gin.SetMode(gin.TestMode)
	h, err := NewAdmin(AdminConfig{Token: testToken, Logger: slog.New(slog.DiscardHandler)},
		Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Models: &fakeModels{}, Usage: pageUsage{}})
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAdmin{h: h, now: time.Now()}
	cookie, _ := ta.signIn(t)
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(cookie)
		return ta.do(req)
	}
	rec := get("/usage?by=user&range=7d")
	body := htmlUnescape(rec.Body.String())
	for _, want := range []string{"<svg", "<rect", ": 100 tokens", "ann@example.com", "(none)", "1.5s", "<strong>total</strong>", `href="/usage.csv?by=user&range=7d"`} {
		if !strings.Contains(body, want) {
			t.Errorf("usage page lacks %q", want)
		}
	}
	if rec.Code != 200 || strings.Count(body, "<rect") != 7 {
		t.Errorf("usage page: %d, %d bars for the last 7 days", rec.Code, strings.Count(body, "<rect"))
	}
	rec = get("/usage.csv?by=user&range=7d")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(rec.Body.String(), "user,requests,prompt_tokens,completion_tokens,errors,queued_seconds\nann@example.com,2,20,50,0,3.000\n") {
		t.Errorf("csv: %d %v\n%s", rec.Code, rec.Header(), rec.Body)
	}
	if rec := get("/usage?by=color"); rec.Code != 400 || !strings.Contains(rec.Body.String(), "use key, model, user or day") {
		t.Errorf("bad grouping: %d", rec.Code)
	}
}
