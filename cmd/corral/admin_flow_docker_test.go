package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"corral/engine/enginetest"
)

// TestAdminFlowInBrowser walks what the owner does on day one, in a real
// browser against corral on real Docker with simulator instances on two
// simulated GPUs: sign in with the first start's link, see both
// instances healthy with their GPU figures, pull a model and watch the
// bar reach 100%, make a key and copy it, call the gateway with it
// through the OpenAI SDK, find that request's tokens on the usage page,
// kill an instance and see the overview say why and recover. Every page
// is photographed at desktop and phone widths.
func TestAdminFlowInBrowser(t *testing.T) {
	bin := chromiumPath(t)
	f := startFleet(t, 2, "--simulate-gpus", "2", "--admin-addr", "127.0.0.1:0")
	t.Parallel()
	base := f.logAttr(t, "admin API listening", "url")
	link := f.logAttr(t, signInLinkMsg, "link")
	if !strings.HasPrefix(link, base+"login/link?code=") {
		t.Fatalf("the first start's link %q is not on the admin URL %s", link, base)
	}
	ctx := browser(t, bin)
	shots := newScreenshots(t, ctx)
	shots.prefix = "flow-"
	both := func(name string) {
		t.Helper()
		shots.take(name)
		do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
		shots.take(name + "-phone")
		do(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))
	}

	// Sign in with the link: one press, then the overview.
	do(t, ctx, "open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#link-signin")))
	shots.take("link")
	do(t, ctx, "sign in", chromedp.Click(chromedp.CSS("#link-signin")), chromedp.WaitVisible(chromedp.CSS("#inst-h")))
	sub := text(t, ctx, ".page-head .sub")
	main := text(t, ctx, "main")
	if !strings.Contains(sub, "2 of 2 instances healthy") {
		t.Fatalf("overview says %q", sub)
	}
	// The mock NVML's A100s: their name, memory, temperature and power.
	for _, want := range []string{"0 · Mock NVIDIA A100-SXM4-40GB", "1 · Mock NVIDIA A100-SXM4-40GB", "30 °C", "31 °C", "of 400 W"} {
		if !strings.Contains(main, want) {
			t.Errorf("the overview lacks %q:\n%s", want, main)
		}
	}
	both("overview")

	// Pull a model: the bar moves and reaches 100%, the table gains it.
	for _, in := range f.st.Instances {
		sim(t, in.Endpoint, "POST", "/_sim/config", `{"pull_duration":"6s"}`, nil)
	}
	do(t, ctx, "pull", chromedp.Navigate(base+"models"), chromedp.WaitVisible(chromedp.CSS("#pull-form")),
		chromedp.SendKeys(chromedp.CSS("#pull-name"), "tinyllama:1.1b"), chromedp.Click(chromedp.CSS("#pull-submit")))
	// Asked from here: the page's own timers are throttled in a headless
	// tab, its stream handlers are not.
	var partWay []string
	for deadline := time.Now().Add(30 * time.Second); len(partWay) == 0; time.Sleep(50 * time.Millisecond) {
		state, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[String(document.getElementById("pull-bar").value), document.getElementById("pull-bytes").textContent]`))
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := strconv.ParseFloat(state[0], 64); v > 0 && v < 100 {
			partWay = state
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pull bar was never seen part way; it says %q, result %q", state, text(t, ctx, "#pull-result"))
		}
	}
	if !regexp.MustCompile(`^[1-9][0-9]?% · [0-9.]+ MB of [0-9.]+ MB · pulling `).MatchString(partWay[1]) {
		t.Fatalf("part way the pull says %q", partWay[1])
	}
	shots.take("pulling")
	do(t, ctx, "pull finishes", chromedp.WaitVisible(chromedp.CSS("#pull-result.ok")), chromedp.WaitVisible(chromedp.CSS(`tr[data-model="tinyllama:1.1b"]`)))
	if bar, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("pull-bar").value`)); err != nil || bar != 100 {
		t.Fatalf("the bar ended at %v (%v)", bar, err)
	}
	if msg := text(t, ctx, "#pull-result"); !strings.HasPrefix(msg, "tinyllama:1.1b is pulled: it is on ") {
		t.Fatalf("pull result: %q", msg)
	}
	both("models")

	// A key, copied with its button.
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.Call(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: perm}, Setting: cdpbrowser.PermissionSettingGranted,
			Origin: strings.TrimSuffix(base, "/"),
		}); err != nil {
			t.Fatalf("clipboard permission: %v", err)
		}
	}
	do(t, ctx, "make a key", chromedp.Navigate(base+"keys"), chromedp.WaitVisible(chromedp.CSS("#key-name")),
		chromedp.SendKeys(chromedp.CSS("#key-name"), "flow"),
		chromedp.Click(chromedp.CSS("#create-h + form button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#new-key")),
		chromedp.Click(chromedp.CSS("button[data-copy]")))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("button[data-copy]").textContent === "Copied"`)); err != nil {
		t.Fatalf("the copy button never said Copied: %q", text(t, ctx, "button[data-copy]"))
	}
	copied, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil || copied != text(t, ctx, "#new-key") || !strings.HasPrefix(copied, "crl_") {
		t.Fatalf("the clipboard holds %q (%v), the page shows %q", copied, err, text(t, ctx, "#new-key"))
	}
	both("keys")

	// The OpenAI SDK with the copied key; its tokens show on the usage page.
	oc := openai.NewClient(option.WithBaseURL(f.gateway+"/v1/"), option.WithAPIKey(copied), option.WithMaxRetries(0))
	cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := oc.Chat.Completions.New(cctx, openai.ChatCompletionNewParams{
		Model:    "llama3.2:1b",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello from the admin flow")},
	})
	if err != nil {
		t.Fatalf("chat completion with the copied key: %v", err)
	}
	if resp.Usage.CompletionTokens <= 0 {
		t.Fatalf("usage %+v", resp.Usage)
	}
	row := regexp.MustCompile(`(?m)^flow\s.*$`)
	for deadline := time.Now().Add(15 * time.Second); ; {
		do(t, ctx, "open usage", chromedp.Navigate(base+"usage?by=key"), chromedp.WaitVisible(chromedp.CSS("#chart-h")))
		// name, requests, prompt tokens, completion tokens, ...
		line := strings.Fields(row.FindString(text(t, ctx, "main table")))
		want := []string{"flow", "1", strconv.FormatInt(resp.Usage.PromptTokens, 10), strconv.FormatInt(resp.Usage.CompletionTokens, 10)}
		if len(line) >= 4 && slices.Equal(line[:4], want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the usage page has no row %q: %q\n%s", want, line, text(t, ctx, "main"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	both("usage")

	// Kill an instance: the open overview (live, not reloaded) says why,
	// then shows it healthy again.
	do(t, ctx, "overview", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#inst-h")),
		chromedp.Evaluate[chromedp.Void]("window.corralMarker = 1; undefined"))
	killed := f.st.Instances[1]
	enginetest.Docker(t, "kill", killed.ContainerID)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("main").textContent.includes("exit code 137")`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("the overview never said why %s went down: %v\n%s", killed.Name, err, text(t, ctx, "main"))
	}
	shots.take("killed")
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector(".page-head .sub").textContent.includes("2 of 2 instances healthy")`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("the overview never showed %s healthy again: %s", killed.Name, text(t, ctx, "main"))
	}
	if marker, err := chromedp.Run(ctx, chromedp.Evaluate[int]("window.corralMarker || 0")); err != nil || marker != 1 {
		t.Fatalf("the overview reloaded instead of updating live (marker %d, %v)", marker, err)
	}
	both("recovered")

	// The instance's own page tells the story in its events.
	do(t, ctx, "instance page", chromedp.Navigate(base+"instances/"+killed.Name), chromedp.WaitVisible(chromedp.CSS("#events-h")))
	if ev := text(t, ctx, "#events-h + div"); !strings.Contains(ev, "exit code 137") {
		t.Fatalf("the events lack the kill:\n%s", ev)
	}
	// Its log follows: lines the simulator writes after the page loaded
	// (one per health probe) appear without a reload.
	lastLine := `(() => { const l = document.getElementById("log").textContent.trim().split("\n"); return l[l.length - 1]; })()`
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](lastLine))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		now, err := chromedp.Run(ctx, chromedp.Evaluate[string](lastLine))
		if err == nil && now != first && now != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log did not follow: last line still %q", first)
		}
	}
	both("instance")
	do(t, ctx, "instances page", chromedp.Navigate(base+"instances"), chromedp.WaitVisible(chromedp.CSS("#list-h")))
	both("instances")
	do(t, ctx, "settings page", chromedp.Navigate(base+"settings"), chromedp.WaitVisible(chromedp.CSS("#domain-h")))
	both("settings")

	// Page weight as transferred, with the static files.
	weights, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`performance.getEntriesByType("resource").map(e => e.transferSize).concat([performance.getEntriesByType("navigation")[0].transferSize])`))
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, w := range weights {
		sum += w
	}
	if sum > 150<<10 {
		t.Fatalf("the settings page transferred %.0f bytes", sum)
	}
	t.Log(fmt.Sprintf("settings page transferred %.0f bytes", sum))
}
