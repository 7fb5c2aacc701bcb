package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine"
	"corral/gpu"
)

// recEngine is a fakeEngine that records the actions asked of it.
type recEngine struct {
	fakeEngine
	done *[]string
}

func (r recEngine) Stop(_ context.Context, name string) error {
	*r.done = append(*r.done, "stop "+name)
	return nil
}
func (r recEngine) Start(name string) error {
	if name != "corral-ollama-0" {
		return errors.New("no instance or chat UI container " + name)
	}
	*r.done = append(*r.done, "start "+name)
	return nil
}
func (r recEngine) Events(name string) []engine.Event {
	return []engine.Event{{At: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Instance: name, From: engine.PhaseHealthy, To: engine.PhaseUnhealthy, Reason: "exit code 137 (killed)"}}
}

type memSettings struct{ s engine.Settings }

func (m *memSettings) InstanceSettings() engine.Settings { return m.s }
func (m *memSettings) SetInstanceSettings(s engine.Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	m.s = s
	return nil
}

type certs struct {
	r  CertReport
	ok bool
}

func (c certs) CertReport() (CertReport, bool) { return c.r, c.ok }

func adminWith(t *testing.T, d Deps, now time.Time) *testAdmin {
	t.Helper()
	gin.SetMode(gin.TestMode)
	if d.Models == nil {
		d.Models = &fakeModels{} // signIn lands on the models page
	}
	ta := &testAdmin{now: now}
	h, err := NewAdmin(AdminConfig{Token: testToken, Logger: slog.New(slog.DiscardHandler), Now: ta.clock}, d)
	if err != nil {
		t.Fatal(err)
	}
	ta.h = h
	return ta
}

func (ta *testAdmin) get(t *testing.T, cookie *http.Cookie, path string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.AddCookie(cookie)
	rec := ta.do(req)
	return rec.Code, htmlUnescape(rec.Body.String())
}

func (ta *testAdmin) post(t *testing.T, cookie *http.Cookie, csrf, path string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	if csrf != "" {
		form.Set("csrf_token", csrf)
	}
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(cookie)
	return ta.do(req)
}

func twoInstances() engine.Status {
	return engine.Status{Docker: "ok", Instances: []engine.InstanceStatus{
		{Name: "corral-ollama-0", GPU: "GPU-1", Phase: engine.PhaseHealthy, Reason: "ollama 0.17.4", Image: "ollama/ollama:0.17.4"},
		{Name: "corral-ollama-1", GPU: "GPU-2", GPUIndex: 1, Phase: engine.PhaseStopped, Reason: "stopped by the owner; start it to bring it back"},
	}}
}

// The instances page lists every container with its actions; a stop asks
// first, says what happens, and is done only by the POST with the CSRF
// token; a stopped one offers Start. Settings are validated and applied.
func TestInstancesPage(t *testing.T) {
	var done []string
	set := &memSettings{s: engine.DefaultSettings()}
	ta := adminWith(t, Deps{Engine: recEngine{fakeEngine{twoInstances()}, &done}, GPUs: figuresGPUs{}, Settings: set}, time.Now())
	cookie, _ := ta.signIn(t)
	code, body := ta.get(t, cookie, "/instances")
	csrf := csrfMeta.FindStringSubmatch(body)[1]
	for _, want := range []string{"corral-ollama-0", "GPU 1", "Restart…", `/instances/corral-ollama-1/start`, "stopped by the owner", `value="ollama/ollama:latest"`} {
		if !strings.Contains(body, want) {
			t.Errorf("instances page lacks %q", want)
		}
	}
	if code != 200 || t.Failed() {
		t.Fatalf("instances page %d:\n%s", code, body)
	}
	code, body = ta.get(t, cookie, "/instances/corral-ollama-0/confirm/stop")
	if code != 200 || !strings.Contains(body, "Stop corral-ollama-0?") || !strings.Contains(body, "stays down") {
		t.Fatalf("stop confirmation %d:\n%s", code, body)
	}
	if len(done) != 0 {
		t.Fatalf("asking did something: %v", done)
	}
	if rec := ta.post(t, cookie, "", "/instances/corral-ollama-0/stop", url.Values{}); rec.Code != http.StatusForbidden || len(done) != 0 {
		t.Fatalf("stop without the CSRF token: %d, did %v", rec.Code, done)
	}
	if rec := ta.post(t, cookie, csrf, "/instances/corral-ollama-0/stop", url.Values{}); rec.Code != http.StatusSeeOther || strings.Join(done, ",") != "stop corral-ollama-0" {
		t.Fatalf("stop: %d, did %v", rec.Code, done)
	}
	if rec := ta.post(t, cookie, csrf, "/instances/nope/start", url.Values{}); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "no instance") {
		t.Fatalf("start of an unknown name: %d %s", rec.Code, rec.Body)
	}
	if code, _ := ta.get(t, cookie, "/instances/corral-ollama-0/confirm/explode"); code != 404 {
		t.Fatalf("an unknown action: %d", code)
	}
	// Settings: a bad keep-alive says what to give; a good change is kept.
	rec := ta.post(t, cookie, csrf, "/instances/settings", url.Values{"image": {"ollama/ollama:0.18.0"}, "keep_alive": {"forever"}, "num_parallel": {"2"}})
	if rec.Code != 400 || !strings.Contains(htmlUnescape(rec.Body.String()), `--keep-alive "forever": use a duration`) || set.s.OllamaImage != "ollama/ollama:latest" {
		t.Fatalf("bad keep-alive: %d %s", rec.Code, rec.Body)
	}
	rec = ta.post(t, cookie, csrf, "/instances/settings", url.Values{"image": {"ollama/ollama:0.18.0"}, "keep_alive": {"1h"}, "num_parallel": {"2"}})
	if rec.Code != http.StatusSeeOther || set.s.OllamaImage != "ollama/ollama:0.18.0" || set.s.KeepAlive != "1h" || set.s.NumParallel != 2 {
		t.Fatalf("settings: %d %+v", rec.Code, set.s)
	}
	// An instance's own page: its events and its log.
	code, body = ta.get(t, cookie, "/instances/corral-ollama-0")
	for _, want := range []string{"healthy → unhealthy", "exit code 137 (killed)", "Listening on [::]:11434", `data-follow="/instances/corral-ollama-0/logs/live"`} {
		if !strings.Contains(body, want) {
			t.Errorf("instance page lacks %q", want)
		}
	}
	if code != 200 || t.Failed() {
		t.Fatalf("instance page %d:\n%s", code, body)
	}
	if code, _ := ta.get(t, cookie, "/instances/nope"); code != 404 {
		t.Fatalf("an unknown instance's page: %d", code)
	}
}

func TestLogsAPI(t *testing.T) {
	ta := adminWith(t, Deps{Engine: fakeEngine{twoInstances()}, GPUs: figuresGPUs{}}, time.Now())
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/instances/corral-ollama-0/logs?tail=10", 200, "Listening on"},
		{"/api/v1/instances/nope/logs", 400, "no instance or chat UI container"},
		{"/api/v1/instances/corral-ollama-0/logs?tail=ten", 400, "tail: give a number"},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := ta.do(req)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s = %d %s", tc.path, rec.Code, rec.Body)
		}
	}
}

// A sign-in link works once, within its time; the page asks before using
// it; a used or expired one says how to get another.
func TestSignInLink(t *testing.T) {
	ta := newTestAdmin(t)
	link, err := ta.h.(*Admin).SignInLink("http://127.0.0.1:8090/")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	if u.Path != "/login/link" || len(u.Query().Get("code")) < 40 {
		t.Fatalf("link %s", link)
	}
	rec := ta.do(httptest.NewRequest("GET", u.RequestURI(), nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="link-signin"`) {
		t.Fatalf("link page: %d\n%s", rec.Code, rec.Body)
	}
	use := func(code string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/login/link", strings.NewReader(url.Values{"code": {code}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		return ta.do(req)
	}
	code := u.Query().Get("code")
	rec = use(code)
	if rec.Code != http.StatusSeeOther || len(rec.Result().Cookies()) != 1 {
		t.Fatalf("first use: %d %v", rec.Code, rec.Result().Cookies())
	}
	if code, body := ta.get(t, rec.Result().Cookies()[0], "/"); code != 200 || !strings.Contains(body, "Overview") {
		t.Fatalf("signed in by the link, the overview: %d", code)
	}
	if rec = use(code); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "corral admin-link") {
		t.Fatalf("second use: %d %s", rec.Code, rec.Body)
	}
	link2, _ := ta.h.(*Admin).SignInLink("http://127.0.0.1:8090/")
	u2, _ := url.Parse(link2)
	ta.advance(linkTTL + time.Second)
	if rec = use(u2.Query().Get("code")); rec.Code != http.StatusUnauthorized {
		t.Fatalf("expired link: %d", rec.Code)
	}
	if rec := ta.do(httptest.NewRequest("GET", u2.RequestURI(), nil)); strings.Contains(rec.Body.String(), `id="link-signin"`) {
		t.Fatal("an expired link still offers to sign in")
	}
}

// The overview warns of a failing or ending certificate and of a full
// disk, and shows the certificate.
func TestOverviewCertAndDiskAlerts(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		cert CertReport
		disk DiskReport
		want []string
	}{
		{"fine", CertReport{Names: []string{"chat.example.com"}, State: "valid", NotAfter: now.Add(60 * 24 * time.Hour)},
			DiskReport{Path: "/var/lib/corral", Free: 400e9, Total: 500e9}, []string{"valid until Apr 30, 2026"}},
		{"ending", CertReport{Names: []string{"chat.example.com"}, State: "valid", NotAfter: now.Add(5 * 24 * time.Hour)},
			DiskReport{Path: "/var/lib/corral", Free: 2e9, Total: 500e9}, []string{"expires in 5 days", "disk low: 2.0 GB free of 500 GB on /var/lib/corral"}},
		{"failing", CertReport{Names: []string{"chat.example.com"}, State: "retrying", LastError: "challenge failed", Hint: "port 80 must reach this host"},
			DiskReport{Free: 400e9, Total: 500e9}, []string{"are failing: challenge failed (port 80 must reach this host)"}},
		{"expired", CertReport{Names: []string{"chat.example.com"}, State: "retrying", NotAfter: now.Add(-time.Hour)},
			DiskReport{Free: 400e9, Total: 500e9}, []string{"expired on 2026-03-01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Deps{Engine: fakeEngine{twoInstances()}, GPUs: figuresGPUs{}, Certs: certs{tc.cert, true},
				DataDisk: func() (DiskReport, error) { return tc.disk, nil }}
			ta := adminWith(t, d, now)
			cookie, _ := ta.signIn(t)
			_, body := ta.get(t, cookie, "/")
			for _, want := range tc.want {
				if !strings.Contains(body, want) {
					t.Errorf("overview lacks %q", want)
				}
			}
			if alerts := strings.Count(body, `role="alert"`); tc.name == "fine" && alerts != 0 {
				t.Errorf("%d alerts when all is fine", alerts)
			}
			if t.Failed() {
				t.Log(body)
			}
		})
	}
}

// The overview's live part comes as SSE: the rendered part at once.
func TestLiveOverview(t *testing.T) {
	ta := adminWith(t, Deps{Engine: fakeEngine{twoInstances()}, GPUs: figuresGPUs{}}, time.Now())
	cookie, csrf := ta.signIn(t)
	srv := httptest.NewServer(ta.h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/live/overview", nil)
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("live overview: %d %s", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var event strings.Builder
	for sc.Scan() && sc.Text() != "" {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			t.Fatalf("not a data line: %q", sc.Text())
		}
		event.WriteString(line + "\n")
	}
	if s := event.String(); !strings.Contains(s, "1 of 2 instances healthy") || strings.Contains(s, "<html") {
		t.Fatalf("the live part:\n%s", s)
	}
	// Signing out ends the stream (within one tick), not liveFor later.
	if rec := ta.post(t, cookie, csrf, "/logout", url.Values{}); rec.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", rec.Code)
	}
	ended := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(3 * liveEvery):
		t.Fatal("the live stream outlived its session")
	}
	// Not signed in: no stream.
	resp2, err := http.Get(srv.URL + "/live/overview")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.Request.URL.Path != "/login" {
		t.Fatalf("live overview without a session went to %s", resp2.Request.URL)
	}
}

// eightGPUs is a full server: 8 GPUs, each with an instance holding two
// models.
func eightGPUs() (engine.Status, gpu.Inventory, []gpu.Metrics, SchedulerStatus) {
	var st engine.Status
	var inv gpu.Inventory
	var ms []gpu.Metrics
	sched := SchedulerStatus{Holding: map[string][]HeldModel{}}
	st.Docker = "ok"
	for i := range 8 {
		uuid := fmt.Sprintf("GPU-%d", i)
		name := fmt.Sprintf("corral-ollama-%d", i)
		inv.Devices = append(inv.Devices, gpu.Device{Index: i, UUID: uuid, Name: "NVIDIA H200", MemoryTotal: 150e9})
		ms = append(ms, gpu.Metrics{Index: i, UUID: uuid, MemoryUsed: 80e9, MemoryTotal: 150e9, UtilizationGPU: 90, TemperatureC: 60, PowerW: 500, PowerLimitW: 700})
		st.Instances = append(st.Instances, engine.InstanceStatus{Name: name, GPU: uuid, GPUIndex: i, Phase: engine.PhaseHealthy, Reason: "ollama 0.17.4", Image: "ollama/ollama:0.17.4"})
		sched.Holding[name] = []HeldModel{{Model: "llama3.1:70b", InFlight: 3}, {Model: "qwen3:8b"}}
	}
	st.Apps = []engine.AppStatus{{Name: "corral-chatui", Role: "chatui", Phase: engine.PhaseHealthy, Image: "ghcr.io/open-webui/open-webui:main"}}
	return st, inv, ms, sched
}

type invGPUs struct {
	inv gpu.Inventory
	ms  []gpu.Metrics
}

func (g invGPUs) Inventory() gpu.Inventory { return g.inv }
func (g invGPUs) Latest() []gpu.Metrics    { return g.ms }

// No page is over 150 KB, with what a big server shows: 8 GPUs, every
// page, and the static files each needs.
func TestPageWeight(t *testing.T) {
	st, inv, ms, sched := eightGPUs()
	var done []string
	d := Deps{Engine: recEngine{fakeEngine{st}, &done}, GPUs: invGPUs{inv, ms}, Scheduler: fixedSched{sched}, Models: &fakeModels{},
		Settings: &memSettings{engine.DefaultSettings()}, Certs: certs{CertReport{Names: []string{"chat.example.com"}, State: "valid"}, true}}
	ta := adminWith(t, d, time.Now())
	cookie, _ := ta.signIn(t)
	static := 0
	for _, name := range []string{"corral.css", "corral.js"} {
		req := httptest.NewRequest("GET", "/static/"+name, nil)
		static += ta.do(req).Body.Len()
	}
	for _, path := range []string{"/", "/instances", "/instances/corral-ollama-0", "/models", "/settings", "/login"} {
		req := httptest.NewRequest("GET", path, nil)
		if path != "/login" {
			req.AddCookie(cookie)
		}
		rec := ta.do(req)
		if rec.Code != 200 {
			t.Fatalf("%s: %d", path, rec.Code)
		}
		total := rec.Body.Len() + static
		t.Logf("%s: %d bytes of HTML + %d of CSS and JS", path, rec.Body.Len(), static)
		if total > 150<<10 {
			t.Errorf("%s weighs %d bytes with its static files, over 150 KB", path, total)
		}
	}
}

// BenchmarkOverview8GPUs is the server time of the overview of a full
// 8-GPU server (the bound: under 50 ms).
func BenchmarkOverview8GPUs(b *testing.B) {
	st, inv, ms, sched := eightGPUs()
	gin.SetMode(gin.TestMode)
	h, err := NewAdmin(AdminConfig{Token: testToken, Logger: slog.New(slog.DiscardHandler)},
		Deps{Engine: fakeEngine{st}, GPUs: invGPUs{inv, ms}, Scheduler: fixedSched{sched}, Tokens: NewTokenRates(nil)})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/html")
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("overview: %d", rec.Code)
		}
		io.Discard.Write(rec.Body.Bytes())
	}
}

type memList struct{ items []string }

func (m *memList) Phrases() []string { return m.items }
func (m *memList) Origins() []string { return m.items }
func (m *memList) SetPhrases(_ context.Context, p []string) error {
	m.items = p
	return nil
}
func (m *memList) SetOrigins(_ context.Context, o []string) error {
	for _, x := range o {
		if !strings.HasPrefix(x, "http") && x != "*" {
			return fmt.Errorf("origin %q: use scheme://host[:port]", x)
		}
	}
	m.items = o
	return nil
}

type chatInfo struct{}

func (chatInfo) Status() any {
	return struct {
		Mode       string `json:"mode"`
		URL        string `json:"url"`
		AccessCode string `json:"access_code"`
	}{"lobechat", "https://chat.example.com/", "c0de"}
}

// The settings page: the chat UI as it runs, and the filter and CORS
// lists saved from their forms (a bad origin says why and keeps the old).
func TestSettingsPage(t *testing.T) {
	filter, cors := &memList{}, &memList{items: []string{"https://a.example"}}
	ta := adminWith(t, Deps{Engine: fakeEngine{twoInstances()}, GPUs: figuresGPUs{}, Filter: filter, CORS: cors, ChatUI: chatInfo{}}, time.Now())
	cookie, _ := ta.signIn(t)
	code, body := ta.get(t, cookie, "/settings")
	csrf := csrfMeta.FindStringSubmatch(body)[1]
	for _, want := range []string{"lobechat", "https://chat.example.com/", "c0de", "https://a.example", "No domain"} {
		if !strings.Contains(body, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
	if code != 200 || t.Failed() {
		t.Fatalf("settings %d:\n%s", code, body)
	}
	if rec := ta.post(t, cookie, csrf, "/settings/filter", url.Values{"phrases": {"secret plan\r\n\r\n  launch codes \n"}}); rec.Code != http.StatusSeeOther ||
		strings.Join(filter.items, "|") != "secret plan|launch codes" {
		t.Fatalf("filter form: %d %q", rec.Code, filter.items)
	}
	rec := ta.post(t, cookie, csrf, "/settings/cors", url.Values{"origins": {"ftp://x"}})
	if rec.Code != 400 || !strings.Contains(htmlUnescape(rec.Body.String()), `origin "ftp://x"`) || cors.items[0] != "https://a.example" {
		t.Fatalf("bad origin: %d %q", rec.Code, cors.items)
	}
}
