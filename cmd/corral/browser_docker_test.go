package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"corral/engine/models"
)

// chromiumPath finds the browser the page tests drive; without one they
// skip, unless CORRAL_BROWSER=required (as in CI, which installs Debian's
// chromium).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no chromium on PATH (apt-get install chromium): the admin page tests drive a real browser"
	if os.Getenv("CORRAL_BROWSER") == "required" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// browser starts a headless chromium for the test, with a profile of its
// own; no sandbox, because tests run as root in a container.
func browser(t *testing.T, bin string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return ctx
}

// screenshots saves full-page PNGs in a temp dir and, when
// CORRAL_SCREENSHOT_DIR is set, there too, for a person to look at.
type screenshots struct {
	t      *testing.T
	ctx    context.Context
	dirs   []string
	prefix string // of the file names
}

func newScreenshots(t *testing.T, ctx context.Context) *screenshots {
	s := &screenshots{t: t, ctx: ctx, dirs: []string{t.TempDir()}, prefix: "admin-"}
	if d := os.Getenv("CORRAL_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("CORRAL_SCREENSHOT_DIR: %v", err)
		}
		s.dirs = append(s.dirs, d)
	}
	return s
}

func (s *screenshots) take(name string) {
	s.t.Helper()
	png, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, d := range s.dirs {
		p := filepath.Join(d, s.prefix+name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			s.t.Fatalf("save screenshot: %v", err)
		}
		s.t.Logf("screenshot %s", p)
	}
}

// throttle limits the tab's uploads to bytesPerSec (-1: no limit).
func throttle(t *testing.T, ctx context.Context, bytesPerSec float64) {
	t.Helper()
	_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: bytesPerSec}},
	})
	if err != nil {
		t.Fatalf("throttle uploads: %v", err)
	}
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	err := chromedp.Do(ctx, steps...)
	// Chromium abandons a page load when the host's interfaces change,
	// which Docker does whenever a container starts: load it again.
	for try := 0; try < 3 && err != nil && strings.Contains(err.Error(), "ERR_NETWORK_CHANGED"); try++ {
		err = chromedp.Do(ctx, steps...)
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestAdminPagesInBrowser: a person signs in with the admin token,
// imports a GGUF file on the models page of a real corral over simulator
// instances, watches it go up, and sees it in the table; every instance
// has it. A bad name and a file that is not GGUF show the API's message.
func TestAdminPagesInBrowser(t *testing.T) {
	bin := chromiumPath(t)
	f := startFleet(t, 2, "--admin-addr", "127.0.0.1:0")
	t.Parallel()
	base := f.logAttr(t, "admin API listening", "url")
	if tf := f.logAttr(t, "admin API listening", "token_file"); tf != filepath.Join(f.dataDir, "admin-token") {
		t.Fatalf("the log names the token file %q", tf)
	}
	raw, err := os.ReadFile(filepath.Join(f.dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(raw))
	dir := t.TempDir()
	gguf := filepath.Join(dir, "tiny.gguf")
	if out, err := exec.Command("go", "run", "../mkgguf", "-o", gguf).CombinedOutput(); err != nil {
		t.Fatalf("mkgguf: %v\n%s", err, out)
	}
	notGGUF := filepath.Join(dir, "notes.gguf")
	os.WriteFile(notGGUF, []byte("these are notes, not a model\n"), 0o600)

	ctx := browser(t, bin)
	shots := newScreenshots(t, ctx)

	// Not signed in: the page sends the browser to sign in.
	do(t, ctx, "open models", chromedp.Navigate(base+"models"), chromedp.WaitVisible(chromedp.CSS("#token")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/login?next=%2Fmodels") {
		t.Fatalf("not signed in, /models went to %s", loc)
	}
	if hint := text(t, ctx, ".hint"); !strings.Contains(hint, filepath.Join(f.dataDir, "admin-token")) {
		t.Fatalf("the sign-in page does not say where the token is: %q", hint)
	}
	shots.take("login")

	do(t, ctx, "wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"),
		chromedp.Click(chromedp.CSS("form button[type=submit]")), chromedp.WaitVisible(chromedp.CSS(".alert.error")))
	if msg := text(t, ctx, ".alert.error"); msg != "That is not this corral's admin token." {
		t.Fatalf("wrong token says %q", msg)
	}
	do(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("form button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#import-form")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != base+"models" {
		t.Fatalf("after sign-in at %s", loc)
	}
	// The overview: both instances healthy, with a table of them.
	do(t, ctx, "open the overview", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#inst-h")))
	if sub := text(t, ctx, ".page-head .sub"); !strings.Contains(sub, "2 of 2 instances healthy") {
		t.Fatalf("overview says %q", sub)
	}
	shots.take("overview")
	do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
	shots.take("overview-phone")
	do(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))
	// A key made on the keys page shows its secret once.
	do(t, ctx, "make a key", chromedp.Navigate(base+"keys"), chromedp.WaitVisible(chromedp.CSS("#key-name")),
		chromedp.SendKeys(chromedp.CSS("#key-name"), "browser"), chromedp.SendKeys(chromedp.CSS("#key-note"), "made in the browser test"),
		chromedp.Click(chromedp.CSS("#create-h + form button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#new-key")))
	if k := text(t, ctx, "#new-key"); !strings.HasPrefix(k, "crl_") {
		t.Fatalf("the new key shows %q", k)
	}
	shots.take("keys")
	// A request with it shows on the usage page.
	chatReq, _ := http.NewRequest("POST", f.gateway+"/v1/chat/completions", strings.NewReader(`{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi"}]}`))
	chatReq.Header.Set("Authorization", "Bearer "+text(t, ctx, "#new-key"))
	if resp, err := http.DefaultClient.Do(chatReq); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a request with the new key: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Usage is flushed every 2 s: look again until the request is there.
	for deadline := time.Now().Add(10 * time.Second); ; {
		do(t, ctx, "open usage", chromedp.Navigate(base+"usage?by=key"), chromedp.WaitVisible(chromedp.CSS("#chart-h")))
		s := text(t, ctx, "main")
		if strings.Contains(s, "browser") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the usage page does not show the new key's request:\n%s", s)
		}
		time.Sleep(500 * time.Millisecond)
	}
	shots.take("usage")
	do(t, ctx, "back to models", chromedp.Navigate(base+"models"), chromedp.WaitVisible(chromedp.CSS("#import-form")))
	if table := text(t, ctx, "#models-table"); !strings.Contains(table, "llama3.2:1b") {
		t.Fatalf("the table lacks the instances' models:\n%s", table)
	}

	// A bad name: the API's own words, and nothing is sent.
	hint, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#import-form"), "data-name-hint"))
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "bad name", chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{gguf}),
		chromedp.SetValue(chromedp.CSS("#import-name"), "bad name!"),
		chromedp.Click(chromedp.CSS("#import-submit")), chromedp.WaitVisible(chromedp.CSS("#import-result.error")))
	if msg := text(t, ctx, "#import-result"); msg != `model name "bad name!" is not valid: `+hint.Value {
		t.Fatalf("bad name says %q", msg)
	}
	shots.take("bad-name")

	// Not a GGUF file: the server's refusal, after the upload.
	do(t, ctx, "not a GGUF file", chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{notGGUF}),
		chromedp.SetValue(chromedp.CSS("#import-name"), "notes"),
		chromedp.Click(chromedp.CSS("#import-submit")), chromedp.WaitVisible(chromedp.CSS("#import-result.error")))
	if msg := text(t, ctx, "#import-result"); !strings.HasPrefix(msg, "notes.gguf is not a GGUF file (it does not start with GGUF") {
		t.Fatalf("a text file says %q", msg)
	}
	shots.take("not-gguf")

	// The real thing, with a template and parameters, the upload slowed
	// down so the bar is seen part way. The marker shows the page was not
	// reloaded to show the new model.
	throttle(t, ctx, 150_000)
	do(t, ctx, "import", chromedp.Evaluate[chromedp.Void]("window.corralMarker = 1; undefined"),
		chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{gguf}),
		chromedp.SetValue(chromedp.CSS("#import-name"), "tiny-web"),
		chromedp.Click(chromedp.CSS("details summary")),
		chromedp.SetValue(chromedp.CSS("#import-template"), "{{ .Prompt }}"),
		chromedp.SetValue(chromedp.CSS("#import-params"), "temperature=0\nstop=</s>"),
		chromedp.Click(chromedp.CSS("#import-submit")))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const v = document.getElementById("import-bar").value; return v >= 25 && v < 90; })()`)); err != nil {
		t.Fatalf("the progress bar was never seen part way: %v", err)
	}
	if b := text(t, ctx, "#import-bytes"); !regexp.MustCompile(`^[1-9][0-9]?% · 0\.[0-9]{2} MB of 0\.[0-9]{2} MB$`).MatchString(b) {
		t.Fatalf("progress label while uploading: %q", b)
	}
	shots.take("uploading")
	do(t, ctx, "import finishes", chromedp.WaitVisible(chromedp.CSS("#import-result.ok")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-model="tiny-web:latest"]`)))
	throttle(t, ctx, -1)
	names := []string{f.st.Instances[0].Name, f.st.Instances[1].Name}
	if msg := text(t, ctx, "#import-result"); msg != "tiny-web:latest imported: it is on "+strings.Join(names, ", ")+"." {
		t.Fatalf("success says %q", msg)
	}
	steps, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#import-steps li")].map(li => li.className + " " + li.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(steps, "\n")
	for _, want := range []string{"done uploading tiny.gguf to corral", "done receiving tiny.gguf", "done uploading to " + names[0], "done verifying on every instance"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("steps lack %q:\n%s", want, joined)
		}
	}
	bar, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("import-bar").value`))
	if bytes := text(t, ctx, "#import-bytes"); err != nil || bar != 100 || !strings.HasPrefix(bytes, "100% · ") || !strings.HasSuffix(bytes, " sent") {
		t.Fatalf("progress bar %v %v, label %q", bar, err, bytes)
	}
	if marker, err := chromedp.Run(ctx, chromedp.Evaluate[int]("window.corralMarker || 0")); err != nil || marker != 1 {
		t.Fatalf("the page reloaded to show the model (marker %d, %v)", marker, err)
	}
	row := text(t, ctx, `tr[data-model="tiny-web:latest"]`)
	if !strings.Contains(row, "2/2") || !strings.Contains(row, names[0]) || !strings.Contains(row, names[1]) {
		t.Fatalf("the new row: %q", row)
	}
	shots.take("imported")

	// Every instance lists it, says the API (with the bearer token, as
	// scripts use it) and each simulator.
	req, _ := http.NewRequest("GET", base+"api/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Models []models.Model `json:"models"`
	}
	err = json.NewDecoder(resp.Body).Decode(&cat)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var on []string
	for _, m := range cat.Models {
		if m.Name == "tiny-web:latest" {
			for _, p := range m.Instances {
				on = append(on, p.Instance)
			}
		}
	}
	if strings.Join(on, ",") != strings.Join(names, ",") {
		t.Fatalf("GET /api/v1/models: tiny-web:latest is on %v, want %v", on, names)
	}
	for _, in := range f.st.Instances {
		if !simTags(t, in.Endpoint)["tiny-web:latest"] {
			t.Fatalf("%s does not list the imported model", in.Name)
		}
	}

	// A fresh load renders the model on the server, no script needed.
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`tr[data-model="tiny-web:latest"]`)))

	// Sign out: the session is gone, the pages ask to sign in again.
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#token")))
	do(t, ctx, "models after sign-out", chromedp.Navigate(base+"models"), chromedp.WaitVisible(chromedp.CSS("#token")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Fatalf("after sign-out /models went to %s", loc)
	}
}
