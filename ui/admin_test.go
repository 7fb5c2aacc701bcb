package ui

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine"
	"corral/engine/models"
)

const testToken = "s3cret-admin-token"

// fakeModels is a catalogue in memory; an import adds to it.
type fakeModels struct {
	mu  sync.Mutex
	cat []models.Model
}

func (f *fakeModels) Catalogue() []models.Model {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]models.Model(nil), f.cat...)
}
func (f *fakeModels) Pull(string) (*models.Pull, error)             { return nil, errors.New("no pulls here") }
func (f *fakeModels) CancelPull(string) error                       { return nil }
func (f *fakeModels) Delete(context.Context, string) error          { return nil }
func (f *fakeModels) Place(context.Context, models.Placement) error { return nil }
func (f *fakeModels) Unplace(string) error                          { return nil }
func (f *fakeModels) Placements() []models.Placement                { return nil }
func (f *fakeModels) ImportFile(_ context.Context, in models.Import, r io.Reader, progress func(models.Event)) error {
	progress(models.Event{Model: in.Name, Status: "receiving " + in.FileName})
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(b), "GGUF") {
		return errors.New(in.FileName + " is not a GGUF file")
	}
	f.mu.Lock()
	f.cat = append(f.cat, models.Model{Name: models.Canonical(in.Name), Size: int64(len(b))})
	f.mu.Unlock()
	progress(models.Event{Model: in.Name, Status: "success", Done: true, Instances: []string{"corral-ollama-0"}})
	return nil
}

// testAdmin is the admin handler over fakes, with a clock the test moves.
type testAdmin struct {
	h      http.Handler
	models *fakeModels
	mu     sync.Mutex
	now    time.Time
}

func newTestAdmin(t *testing.T) *testAdmin {
	t.Helper()
	gin.SetMode(gin.TestMode)
	ta := &testAdmin{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), models: &fakeModels{cat: []models.Model{
		{Name: "llama3.2:1b", Size: 1_321_098_329, Family: "llama", ParameterSize: "1.2B", Quantization: "Q8_0",
			Instances: []models.Presence{{Instance: "corral-ollama-0", GPU: "GPU-1", Loaded: true}, {Instance: "corral-ollama-1", GPU: "GPU-2"}},
			Placement: &models.Placement{Model: "llama3.2:1b", Replicas: 1}},
		{Name: "evil<script>:latest", Size: 900, Instances: []models.Presence{{Instance: "corral-ollama-1"}}},
	}}}
	st := engine.Status{Instances: []engine.InstanceStatus{
		{Name: "corral-ollama-0", Phase: engine.PhaseHealthy}, {Name: "corral-ollama-1", Phase: engine.PhaseUnhealthy}}}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "corral_up 1\n") })
	h, err := NewAdmin(AdminConfig{Token: testToken, TokenFile: "/var/lib/corral/admin-token", Metrics: metrics, Now: ta.clock,
		Logger: slog.New(slog.DiscardHandler)},
		Deps{Engine: fakeEngine{st}, GPUs: fakeGPUs{}, Models: ta.models})
	if err != nil {
		t.Fatal(err)
	}
	ta.h = h
	return ta
}

func (ta *testAdmin) clock() time.Time {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.now
}

func (ta *testAdmin) advance(d time.Duration) {
	ta.mu.Lock()
	ta.now = ta.now.Add(d)
	ta.mu.Unlock()
}

func (ta *testAdmin) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	ta.h.ServeHTTP(rec, req)
	return rec
}

func loginRequest(token, next string) *http.Request {
	form := url.Values{"token": {token}, "next": {next}}
	req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return req
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// signIn logs in and returns the session cookie and the page's CSRF token.
func (ta *testAdmin) signIn(t *testing.T) (*http.Cookie, string) {
	t.Helper()
	rec := ta.do(loginRequest(testToken, "/models"))
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) != 1 {
		t.Fatalf("sign-in = %d, cookies %v: %s", rec.Code, cookies, rec.Body)
	}
	req := httptest.NewRequest("GET", "/models", nil)
	req.AddCookie(cookies[0])
	rec = ta.do(req)
	m := csrfMeta.FindStringSubmatch(rec.Body.String())
	if rec.Code != 200 || m == nil {
		t.Fatalf("models page after sign-in = %d, no csrf meta:\n%s", rec.Code, rec.Body)
	}
	return cookies[0], m[1]
}

func TestLogin(t *testing.T) {
	cases := []struct {
		name     string
		req      func() *http.Request
		code     int
		location string
		cookie   bool
		secure   bool
		body     string
	}{
		{"good token", func() *http.Request { return loginRequest(testToken, "/models") }, 303, "/models", true, false, ""},
		{"pasted with a newline", func() *http.Request { return loginRequest(testToken+"\n", "") }, 303, "/", true, false, ""},
		{"over TLS the cookie is Secure", func() *http.Request {
			r := loginRequest(testToken, "/models")
			r.TLS = &tls.ConnectionState{}
			return r
		}, 303, "/models", true, true, ""},
		{"next off-site is ignored", func() *http.Request { return loginRequest(testToken, "//evil.example/x") }, 303, "/", true, false, ""},
		{"bad token", func() *http.Request { return loginRequest("nope", "/models") }, 401, "", false, false, "That is not this corral&#39;s admin token."},
		{"empty token", func() *http.Request { return loginRequest("", "/models") }, 401, "", false, false, "admin token"},
		{"cross-site form", func() *http.Request {
			r := loginRequest(testToken, "/models")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, 403, "", false, false, "cross-site request refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAdmin(t)
			rec := ta.do(tc.req())
			if rec.Code != tc.code {
				t.Fatalf("code = %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if got := rec.Header().Get("Location"); got != tc.location {
				t.Errorf("Location = %q, want %q", got, tc.location)
			}
			if !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("body lacks %q:\n%s", tc.body, rec.Body)
			}
			cookies := rec.Result().Cookies()
			if !tc.cookie {
				if len(cookies) != 0 {
					t.Fatalf("cookies set on a refused sign-in: %v", cookies)
				}
				return
			}
			if len(cookies) != 1 {
				t.Fatalf("cookies = %v, want one session cookie", cookies)
			}
			c := cookies[0]
			if c.Name != sessionCookie || len(c.Value) < 43 || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != tc.secure || c.MaxAge != int(DefaultSessionTTL.Seconds()) {
				t.Fatalf("cookie = %+v (raw %q)", c, rec.Header().Get("Set-Cookie"))
			}
			if strings.Contains(c.Value, testToken) {
				t.Fatal("the cookie carries the admin token")
			}
		})
	}
}

func TestLoginPageSaysWhereTheTokenIs(t *testing.T) {
	ta := newTestAdmin(t)
	rec := ta.do(httptest.NewRequest("GET", "/login?next=/models", nil))
	body := rec.Body.String()
	for _, want := range []string{"/var/lib/corral/admin-token", "admin-token", `name="next" value="/models"`, `type="password"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
}

const tokenRequiredBody = `{"error":"admin token required: send Authorization: Bearer <token> (the token is in the data dir's admin-token file)"}` + "\n"

func TestAdminAuth(t *testing.T) {
	ta := newTestAdmin(t)
	cookie, csrf := ta.signIn(t)
	type opt func(*http.Request)
	bearer := func(tok string) opt { return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) } }
	withCookie := func(r *http.Request) { r.AddCookie(cookie) }
	token := func(tok string) opt { return func(r *http.Request) { r.Header.Set("X-CSRF-Token", tok) } }
	site := func(s string) opt { return func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", s) } }
	origin := func(o string) opt { return func(r *http.Request) { r.Header.Set("Origin", o) } }
	const gguf = "GGUF\x03\x00\x00\x00tiny"
	const imp = "/api/v1/models/import?name=tiny&file=tiny.gguf"
	const weight = "/api/v1/instances/corral-ollama-0/weight"
	// The session's token with its first character changed: a fixed one
	// would be the token itself in one session of 64.
	wrong := "x" + csrf[1:]
	if wrong == csrf {
		wrong = "y" + csrf[1:]
	}

	cases := []struct {
		name, method, path, body string
		opts                     []opt
		code                     int
		want                     string // in the body, or the Location for redirects
	}{
		{"page without credentials redirects", "GET", "/models", "", nil, 303, "/login?next=%2Fmodels"},
		{"root without credentials redirects", "GET", "/", "", nil, 303, "/login?next=%2F"},
		{"API without credentials is the JSON 401", "GET", "/api/v1/status", "", nil, 401, tokenRequiredBody},
		{"metrics without credentials", "GET", "/metrics", "", nil, 401, tokenRequiredBody},
		{"unknown path without credentials", "GET", "/nope", "", nil, 401, tokenRequiredBody},
		{"wrong bearer", "GET", "/api/v1/status", "", []opt{bearer("nope")}, 401, tokenRequiredBody},
		{"wrong bearer beats a good cookie", "GET", "/api/v1/status", "", []opt{bearer("nope"), withCookie}, 401, tokenRequiredBody},
		{"bearer API", "GET", "/api/v1/status", "", []opt{bearer(testToken)}, 200, `"instances"`},
		{"bearer metrics", "GET", "/metrics", "", []opt{bearer(testToken)}, 200, "corral_up 1"},
		{"bearer unknown path", "GET", "/nope", "", []opt{bearer(testToken)}, 404, "no such endpoint"},
		{"bearer page", "GET", "/models", "", []opt{bearer(testToken)}, 200, "llama3.2:1b"},
		{"bearer change needs no CSRF token", "PUT", weight, `{"weight":2}`, []opt{bearer(testToken)}, 200, `"instances"`},
		{"cookie API read", "GET", "/api/v1/models", "", []opt{withCookie}, 200, `"llama3.2:1b"`},
		{"cookie metrics", "GET", "/metrics", "", []opt{withCookie}, 200, "corral_up 1"},
		{"cookie page", "GET", "/models", "", []opt{withCookie}, 200, "llama3.2:1b"},
		{"unknown cookie", "GET", "/api/v1/status", "", []opt{func(r *http.Request) { r.AddCookie(&http.Cookie{Name: sessionCookie, Value: "forged"}) }}, 401, tokenRequiredBody},
		{"cookie import without CSRF token", "POST", imp, gguf, []opt{withCookie, site("same-origin")}, 403, `{"error":"CSRF token missing: send the page's csrf-token as the X-CSRF-Token header`},
		{"cookie import with a wrong CSRF token", "POST", imp, gguf, []opt{withCookie, site("same-origin"), token(wrong)}, 403, `{"error":"CSRF token does not match this session: reload the page and try again"}`},
		{"cookie import from another site", "POST", imp, gguf, []opt{withCookie, site("cross-site"), token(csrf)}, 403, "cross-site request refused"},
		{"cookie import with a foreign Origin", "POST", imp, gguf, []opt{withCookie, origin("https://evil.example"), token(csrf)}, 403, "cross-site request refused"},
		{"cookie change done right", "PUT", weight, `{"weight":2}`, []opt{withCookie, site("same-origin"), token(csrf)}, 200, `"instances"`},
		{"cookie change with a same-origin Origin", "PUT", weight, `{"weight":2}`, []opt{withCookie, origin("http://example.com"), token(csrf)}, 200, `"instances"`},
		{"cookie change without CSRF token", "PUT", weight, `{"weight":2}`, []opt{withCookie}, 403, "CSRF token missing"},
		{"logout without CSRF token", "POST", "/logout", "", []opt{withCookie, site("same-origin")}, 403, "CSRF token missing"},
		{"logout without credentials", "POST", "/logout", "", nil, 303, "/login?next=%2F"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			for _, o := range tc.opts {
				o(req)
			}
			rec := ta.do(req)
			if rec.Code != tc.code {
				t.Fatalf("code = %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			got := rec.Body.String()
			if rec.Code/100 == 3 {
				got = rec.Header().Get("Location")
			}
			if tc.code == 401 && got != tc.want || !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if tc.code == 401 && rec.Header().Get("WWW-Authenticate") != `Bearer realm="corral admin"` {
				t.Fatalf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestSessionExpiryAndLogout(t *testing.T) {
	ta := newTestAdmin(t)
	get := func(c *http.Cookie) int {
		req := httptest.NewRequest("GET", "/api/v1/status", nil)
		req.AddCookie(c)
		return ta.do(req).Code
	}
	cookie, _ := ta.signIn(t)
	ta.advance(DefaultSessionTTL - time.Minute)
	if code := get(cookie); code != 200 {
		t.Fatalf("a session just short of its TTL = %d, want 200", code)
	}
	ta.advance(time.Minute)
	if code := get(cookie); code != 401 {
		t.Fatalf("an expired session = %d, want 401", code)
	}
	req := httptest.NewRequest("GET", "/models", nil)
	req.AddCookie(cookie)
	if rec := ta.do(req); rec.Code != 303 || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Fatalf("page with an expired session = %d %q", rec.Code, rec.Header().Get("Location"))
	}

	// Logout by the page's form: the session ends, the cookie goes.
	cookie, csrf := ta.signIn(t)
	form := url.Values{"csrf_token": {csrf}}
	req = httptest.NewRequest("POST", "/logout", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(cookie)
	rec := ta.do(req)
	if rec.Code != 303 || rec.Header().Get("Location") != "/login" {
		t.Fatalf("logout = %d %q: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	if c := rec.Result().Cookies(); len(c) != 1 || c[0].Name != sessionCookie || c[0].MaxAge >= 0 {
		t.Fatalf("logout cookies = %v, want the session cookie cleared", c)
	}
	if code := get(cookie); code != 401 {
		t.Fatalf("after logout the old cookie = %d, want 401", code)
	}
}

func TestModelsPage(t *testing.T) {
	ta := newTestAdmin(t)
	cookie, csrf := ta.signIn(t)
	req := httptest.NewRequest("GET", "/models", nil)
	req.AddCookie(cookie)
	rec := ta.do(req)
	body := rec.Body.String()
	for _, want := range []string{
		"<title>Models · corral</title>",
		`<a href="/models" aria-current="page">Models</a>`,
		`<input type="hidden" name="csrf_token" value="` + csrf + `">`,
		"1 of 2 instances healthy",
		`<tr data-model="llama3.2:1b">`,
		"1.3 GB", "llama", "1.2B", "Q8_0",
		`title="on 2 of 2 instances">2/2</span>`,
		`<span class="chip loaded" title="loaded in memory · GPU GPU-1">corral-ollama-0 · loaded</span>`,
		`<span class="chip" title="on disk, not loaded · GPU GPU-2">corral-ollama-1</span>`,
		"warm on 1 instance",
		"evil&lt;script&gt;:latest", "900 B",
		`id="import-form"`, `data-name-hint="use NAME or NAMESPACE/NAME`,
		`src="/static/corral.js?v=`, `href="/static/corral.css?v=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("models page lacks %q", want)
		}
	}
	if strings.Contains(body, "evil<script>") {
		t.Error("a model name went into the page unescaped")
	}
	// The pattern the script uses is the server's, intact.
	m := regexp.MustCompile(`data-name-pattern="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no data-name-pattern")
	}
	if got := htmlUnescape(m[1]); got != importNamePattern {
		t.Errorf("data-name-pattern = %q, want %q", got, importNamePattern)
	}

	// The fragment the script swaps in after an import.
	req = httptest.NewRequest("GET", "/models/table", nil)
	req.AddCookie(cookie)
	rec = ta.do(req)
	if frag := rec.Body.String(); rec.Code != 200 || strings.Contains(frag, "<html") || !strings.Contains(frag, `<tr data-model="llama3.2:1b">`) {
		t.Fatalf("table fragment = %d:\n%s", rec.Code, frag)
	}

	// An empty catalogue says what to do.
	ta.models.cat = nil
	rec = ta.do(req)
	if !strings.Contains(rec.Body.String(), "No models yet") {
		t.Fatalf("empty table:\n%s", rec.Body)
	}
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'").Replace(s)
}

func TestStaticFiles(t *testing.T) {
	ta := newTestAdmin(t)
	rec := ta.do(httptest.NewRequest("GET", "/login", nil))
	m := regexp.MustCompile(`href="(/static/corral\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no stylesheet link:\n%s", rec.Body)
	}
	cases := []struct {
		path, ctype, cache string
		code               int
	}{
		{m[1], "text/css; charset=utf-8", "public, max-age=31536000, immutable", 200},
		{"/static/corral.css?v=old", "text/css; charset=utf-8", "no-cache", 200},
		{"/static/corral.js", "text/javascript; charset=utf-8", "no-cache", 200},
		{"/static/nope.js", "", "", 404},
	}
	for _, tc := range cases {
		rec := ta.do(httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.code || tc.code == 200 && (rec.Header().Get("Content-Type") != tc.ctype || rec.Header().Get("Cache-Control") != tc.cache) {
			t.Errorf("GET %s = %d %q %q", tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"))
		}
	}
}

func TestNewAdminNeedsAToken(t *testing.T) {
	if _, err := NewAdmin(AdminConfig{}, Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}}); err == nil {
		t.Fatal("NewAdmin without a token: no error")
	}
}

// TestImportWithSession: the page's upload, as its script makes it, over
// a real connection (the import streams while it reads: full duplex).
func TestImportWithSession(t *testing.T) {
	ta := newTestAdmin(t)
	cookie, csrf := ta.signIn(t)
	srv := httptest.NewServer(ta.h)
	defer srv.Close()
	cases := []struct {
		name, query, body string
		code              int
		want              string
	}{
		{"good file", "name=tiny&file=tiny.gguf", "GGUF\x03\x00\x00\x00tiny", 200, `"status":"success"`},
		{"not a GGUF file", "name=notes&file=notes.txt", "hello", 200, `"error":"notes.txt is not a GGUF file"`},
		{"bad name", "name=bad+name&file=tiny.gguf", "GGUF", 400, `{"error":"model name \"bad name\" is not valid`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/api/v1/models/import?"+tc.query, strings.NewReader(tc.body))
			req.AddCookie(cookie)
			req.Header.Set("X-CSRF-Token", csrf)
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) {
				t.Fatalf("import = %d %s, want %d with %s", resp.StatusCode, body, tc.code, tc.want)
			}
		})
	}
	names := map[string]bool{}
	for _, m := range ta.models.Catalogue() {
		names[m.Name] = true
	}
	if !names["tiny:latest"] || names["notes:latest"] {
		t.Fatalf("catalogue after imports: %v", names)
	}
}
