package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	chatsim "corral/cmd/chatui-sim/simimage"
	"corral/cmd/ollama-sim/simimage"
	"corral/engine"
	"corral/engine/enginetest"
	"corral/engine/keys"
)

// appsHealthy is true when the chat UI's n containers are all healthy.
func appsHealthy(n int) func(engine.Status) bool {
	return func(st engine.Status) bool {
		if len(st.Apps) != n {
			return false
		}
		for _, a := range st.Apps {
			if a.Phase != engine.PhaseHealthy {
				return false
			}
		}
		return true
	}
}

// getChat fetches path from the chat UI listener as a browser would.
func getChat(t *testing.T, base, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestChatUIOpenWebUI: corral runs the chat UI (the stand-in in Open
// WebUI's place) on the private network, wired to the gateway's internal
// listener with a key of its own, and serves it on --chat-addr: the page
// loads, a websocket echoes through the front door, a chat streams from
// the instances and its usage names the chat user. Killed, it is healed
// while the front door says what is happening and /v1 keeps working; its
// data outlives the container.
func TestChatUIOpenWebUI(t *testing.T) {
	img := chatsim.Image(t)
	f := startFleet(t, 1, "--chat-ui", "open-webui", "--chat-ui-image", img, "--chat-addr", "127.0.0.1:0")
	t.Parallel()
	chat := "http://" + f.logAttr(t, "chat UI listening", "addr")
	st := f.waitStatus(t, "the chat UI healthy", 60*time.Second, appsHealthy(1))
	app := st.Apps[0]
	if app.Name != f.st.Namespace+"-chatui" || app.Volume != f.st.Namespace+"-chatui-data" || app.Image != img {
		t.Fatalf("chat UI status %+v", app)
	}

	if code, body := getChat(t, chat, "/"); code != 200 || !strings.Contains(body, "chat UI stand-in") {
		t.Fatalf("page: %d %s", code, body)
	}
	var env map[string]string
	if code, body := getChat(t, chat, "/env"); code != 200 || json.Unmarshal([]byte(body), &env) != nil {
		t.Fatalf("env: %d %s", code, body)
	}
	for k, want := range map[string]string{"ENABLE_OLLAMA_API": "false", "ENABLE_FORWARD_USER_INFO_HEADERS": "true", "RAG_EMBEDDING_ENGINE": "openai", "OFFLINE_MODE": "true"} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
	base := env["OPENAI_API_BASE_URL"]
	if !strings.HasSuffix(base, "/v1") || strings.Contains(base, ":11434") || env["RAG_OPENAI_API_BASE_URL"] != base ||
		!strings.HasPrefix(env["OPENAI_API_KEY"], "crl_") || env["RAG_OPENAI_API_KEY"] != env["OPENAI_API_KEY"] || len(env["WEBUI_SECRET_KEY"]) < 20 {
		t.Fatalf("wiring: %v", env)
	}
	if out, err := f.cli(t, "keys", "list"); err != nil || !strings.Contains(out, keys.InternalName) {
		t.Fatalf("keys list: %v\n%s", err, out)
	}

	// A websocket through the front door.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(chat, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "hello" {
		t.Fatalf("websocket echo: %q %v", msg, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")

	// A chat the chat UI makes through the gateway, as a signed-in user.
	resp, err := http.Post(chat+"/chat", "application/json", strings.NewReader(`{"model":"llama3.2:1b","user":"ann@example.com","prompt":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	var chunks int
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "data: [DONE]":
			done = true
		case strings.HasPrefix(line, "data: {"):
			chunks++
		}
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !done || chunks < 2 {
		t.Fatalf("chat through the chat UI: %d, %d chunks, done %v", resp.StatusCode, chunks, done)
	}
	rep := f.usageBy(t, "user", 1)
	if len(rep.Rows) != 1 || rep.Rows[0].Group != "ann@example.com" {
		t.Fatalf("usage by user: %+v", rep.Rows)
	}
	if keyRep := f.usageBy(t, "key", 1); len(keyRep.Rows) != 1 || keyRep.Rows[0].Group != keys.InternalName {
		t.Fatalf("usage by key: %+v", keyRep.Rows)
	}

	// Its data outlives the container.
	if resp, err := http.Post(chat+"/data", "text/plain", strings.NewReader("kept")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("write data: %v %v", resp, err)
	}
	if out, err := exec.Command("docker", "rm", "-f", app.Name).CombinedOutput(); err != nil {
		t.Fatalf("docker rm: %v %s", err, out)
	}
	// Meanwhile: the waiting page, and the gateway unaffected.
	code, body := getChat(t, chat, "/")
	for deadline := time.Now().Add(10 * time.Second); code == 200 && time.Now().Before(deadline); code, body = getChat(t, chat, "/") {
		time.Sleep(20 * time.Millisecond)
	}
	if code != 503 || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("while the chat UI is gone: %d %s", code, body)
	}
	gwResp, err := f.do("POST", "/v1/chat/completions", `{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi"}]}`)
	if err != nil || gwResp.StatusCode != 200 {
		t.Fatalf("/v1 while the chat UI is gone: %v %v", gwResp, err)
	}
	readAllBody(t, gwResp)
	f.waitStatus(t, "the chat UI recreated and healthy", 60*time.Second, func(st engine.Status) bool {
		return appsHealthy(1)(st) && st.Apps[0].ContainerID != app.ContainerID
	})
	code, body = getChat(t, chat, "/data")
	if code != 200 || !strings.Contains(body, "kept") {
		t.Fatalf("data after recreation: %d %s", code, body)
	}
}

// TestChatUIImageMissing: a chat UI image that cannot be had leaves the
// chat UI failed with Docker's words, the front door says so, and /v1
// works.
func TestChatUIImageMissing(t *testing.T) {
	f := startFleet(t, 1, "--chat-ui", "lobechat", "--chat-ui-image", "corral-test/no-such-image:1", "--chat-addr", "127.0.0.1:0")
	t.Parallel()
	chat := "http://" + f.logAttr(t, "chat UI listening", "addr")
	st := f.waitStatus(t, "the chat UI failed", 60*time.Second, func(st engine.Status) bool {
		return len(st.Apps) == 1 && st.Apps[0].Phase == engine.PhaseFailed
	})
	if r := st.Apps[0].Reason; !strings.Contains(r, "no-such-image") || !strings.Contains(r, "--chat-ui-image") {
		t.Fatalf("reason: %s", r)
	}
	if code, body := getChat(t, chat, "/"); code != 503 || !strings.Contains(body, "not available") {
		t.Fatalf("page: %d %s", code, body)
	}
	resp, err := f.do("POST", "/v1/chat/completions", `{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi"}]}`)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// TestChatUIOverHTTPSInBrowser: with a domain, its certificate from an
// ACME CA (Pebble, in this process), the chat UI is the site's root over
// HTTPS and /v1 the gateway; a real browser loads the page, whose script
// echoes a message through a websocket (wss) across the front door.
func TestChatUIOverHTTPSInBrowser(t *testing.T) {
	bin := chromiumPath(t)
	img := chatsim.Image(t)
	const domain = "chat.ui.corral.test"
	ca, domainArgs := pebbleDomain(t, domain)
	dataDir := t.TempDir()
	p := startServe(t, dataDir, append([]string{"--namespace", enginetest.Namespace(t), "--cpu-instances", "1", "--ollama-image", simimage.Image(t),
		"--chat-ui", "open-webui", "--chat-ui-image", img, "--admin-addr", "127.0.0.1:0"}, domainArgs...)...)
	p.waitStatus(t, "the instance and the chat UI healthy", 90*time.Second, func(st engine.Status) bool { return allHealthy(1)(st) && appsHealthy(1)(st) })
	waitCertificate(t, dataDir)
	site := fmt.Sprintf("https://%s:%d", domain, ca.TLSPort)
	adminToken, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}

	hc := ca.Client(t)
	var env map[string]string
	resp, err := hc.Get(site + "/env")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if err != nil || resp.ProtoMajor != 2 || env["WEBUI_URL"] != site {
		t.Fatalf("the chat UI over HTTPS: %s, WEBUI_URL %q, %v", resp.Proto, env["WEBUI_URL"], err)
	}
	resp, err = hc.Get(site + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/v1 on the chat UI's site without a key: %d, want the gateway's 401", resp.StatusCode)
	}

	// The admin pages and API are on their own origin only: the chat
	// UI's host does not answer them, even with the admin token.
	for _, path := range []string{"/api/v1/status", "/login", "/metrics", "/api/v1/backup", "/instances"} {
		req, _ := http.NewRequest("GET", site+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(adminToken)))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), `"namespace"`) || strings.Contains(string(body), "admin token") || strings.Contains(string(body), "corral_") ||
			resp.Header.Get("Content-Disposition") != "" {
			t.Fatalf("the chat UI's host answered the admin's %s: %d %.300s", path, resp.StatusCode, body)
		}
	}
	adminURL := p.logAttr(t, "admin API listening", "url")
	if !strings.HasPrefix(adminURL, fmt.Sprintf("https://%s:", domain)) || strings.HasSuffix(adminURL, fmt.Sprintf(":%d/", ca.TLSPort)) {
		t.Fatalf("the admin's URL %s is not its own origin", adminURL)
	}

	// A chat the chat UI makes through the gateway, asked over HTTPS.
	resp, err = hc.Post(site+"/chat", "application/json", strings.NewReader(`{"model":"llama3.2:1b","user":"bea@example.com","prompt":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(strings.TrimSpace(string(body)), "data: [DONE]") || strings.Count(string(body), "data: {") < 2 {
		t.Fatalf("chat over HTTPS: %d %s", resp.StatusCode, body)
	}

	// Chromium resolves the domain to loopback; the chain was checked
	// above with Pebble's root, which Chromium does not know.
	ctx := browser(t, bin, chromedp.Flag("host-resolver-rules", "MAP "+domain+" 127.0.0.1"), chromedp.Flag("ignore-certificate-errors", true))
	shots := newScreenshots(t, ctx)
	shots.prefix = "chatui-"
	do(t, ctx, "open the chat UI", chromedp.Navigate(site+"/"), chromedp.WaitVisible(chromedp.CSS(`body[data-ws="echoed"]`)))
	if s := text(t, ctx, "body"); !strings.Contains(s, "chat UI stand-in") || !strings.Contains(s, "wss:") {
		t.Fatalf("page text: %s", s)
	}
	shots.take("https")

	// Gone: the page that says so, in the browser.
	st, err := p.status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("docker", "rm", "-f", st.Apps[0].Name).CombinedOutput(); err != nil {
		t.Fatalf("docker rm: %v %s", err, out)
	}
	do(t, ctx, "open the chat UI while it is gone", chromedp.Navigate(site+"/"), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if s := text(t, ctx, "main h1"); !strings.HasPrefix(s, "The chat is") {
		t.Fatalf("waiting page: %s", s)
	}
	shots.take("waiting")
}

// chatEnv reads the chat UI stand-in's environment through the front
// door.
func chatEnv(t *testing.T, chat string) map[string]string {
	t.Helper()
	code, body := getChat(t, chat, "/env")
	var env map[string]string
	if code != 200 || json.Unmarshal([]byte(body), &env) != nil {
		t.Fatalf("env: %d %s", code, body)
	}
	return env
}

// chatEnvQuiet is chatEnv for polling: nil while the chat UI is down.
func chatEnvQuiet(chat string) map[string]string {
	resp, err := http.Get(chat + "/env")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var env map[string]string
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&env) != nil {
		return nil
	}
	return env
}

// TestChatUIModeSwitch: a serve with another --chat-ui replaces the
// container and keeps the old one's volume; the secrets and the key are
// the same after every restart, so switching back finds the data and the
// sessions as they were. LobeChat is wired as documented.
func TestChatUIModeSwitch(t *testing.T) {
	img := chatsim.Image(t)
	ns := enginetest.Namespace(t)
	dataDir := t.TempDir()
	serve := func(mode string) (*daemonProc, string, engine.Status) {
		p := startServe(t, dataDir, "--namespace", ns, "--cpu-instances", "1", "--ollama-image", simimage.Image(t),
			"--chat-ui", mode, "--chat-ui-image", img, "--chat-addr", "127.0.0.1:0")
		st := p.waitStatus(t, mode+" healthy", 60*time.Second, func(st engine.Status) bool { return allHealthy(1)(st) && appsHealthy(1)(st) })
		return p, "http://" + p.logAttr(t, "chat UI listening", "addr"), st
	}
	t.Parallel()
	p, chat, st := serve("open-webui")
	first := chatEnv(t, chat)
	if resp, err := http.Post(chat+"/data", "text/plain", strings.NewReader("kept")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("write data: %v %v", resp, err)
	}
	webui := st.Apps[0].ContainerID
	p.stop(t, syscall.SIGTERM)

	p, chat, st = serve("lobechat")
	if st.Apps[0].ContainerID == webui || st.Apps[0].Volume != "" {
		t.Fatalf("LobeChat: %+v", st.Apps[0])
	}
	lobe := chatEnv(t, chat)
	if !strings.HasSuffix(lobe["OPENAI_PROXY_URL"], "/v1") || lobe["OPENAI_API_KEY"] != first["OPENAI_API_KEY"] ||
		len(lobe["ACCESS_CODE"]) < 20 || lobe["ENABLED_OLLAMA"] != "0" || lobe["OPENAI_API_BASE_URL"] != "" {
		t.Fatalf("LobeChat's wiring: %v", lobe)
	}
	if out, err := exec.Command("docker", "volume", "inspect", ns+"-chatui-data").CombinedOutput(); err != nil {
		t.Fatalf("Open WebUI's volume is gone: %v %s", err, out)
	}
	// The owner reads the access code, and recreates the container.
	f := &fleet{daemonProc: p}
	if out, err := f.cli(t, "chat-ui"); err != nil || !strings.Contains(out, "Chat UI: lobechat at "+chat+", access code "+lobe["ACCESS_CODE"]) {
		t.Fatalf("chat-ui: %v\n%s", err, out)
	}
	lobeID := st.Apps[0].ContainerID
	if out, err := f.cli(t, "chat-ui", "recreate"); err != nil {
		t.Fatalf("chat-ui recreate: %v\n%s", err, out)
	}
	p.waitStatus(t, "LobeChat recreated", 60*time.Second, func(st engine.Status) bool {
		return appsHealthy(1)(st) && st.Apps[0].ContainerID != lobeID
	})
	if out, err := f.cli(t, "chat-ui", "restart"); err != nil || !strings.Contains(out, "restarted on request") {
		t.Fatalf("chat-ui restart: %v\n%s", err, out)
	}
	if out, err := f.cli(t, "chat-ui", "reboot"); err == nil || !strings.Contains(err.Error(), "unknown action") {
		t.Fatalf("chat-ui reboot: %v\n%s", err, out)
	}
	// LobeChat offers the gateway's models, and follows a pull.
	p.waitStatus(t, "LobeChat restarted", 60*time.Second, appsHealthy(1))
	if got := chatEnv(t, chat)["OPENAI_MODEL_LIST"]; got != "-all,+llama3.2:1b,+qwen2.5:0.5b" {
		t.Fatalf("OPENAI_MODEL_LIST %q", got)
	}
	if out, err := f.cli(t, "pull", "llama3.2:3b"); err != nil {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(chatEnvQuiet(chat)["OPENAI_MODEL_LIST"], "+llama3.2:3b") {
		if time.Now().After(deadline) {
			t.Fatalf("the chat UI's model list never showed the pulled model: %q", chatEnvQuiet(chat)["OPENAI_MODEL_LIST"])
		}
		time.Sleep(250 * time.Millisecond)
	}
	p.stop(t, syscall.SIGTERM)

	_, chat, _ = serve("open-webui")
	again := chatEnv(t, chat)
	for _, k := range []string{"WEBUI_SECRET_KEY", "OPENAI_API_KEY", "OPENAI_API_BASE_URL"} {
		if again[k] != first[k] {
			t.Errorf("%s changed across restarts: %q, then %q", k, first[k], again[k])
		}
	}
	if code, body := getChat(t, chat, "/data"); code != 200 || !strings.Contains(body, "kept") {
		t.Fatalf("Open WebUI's data after switching back: %d %s", code, body)
	}
}

// TestChatUILobeChatDB: lobechat-db runs the database and the object
// store first, each healthy before the app starts; the bucket is made
// with the generated keys; the app is wired to both, to the gateway, and
// gets the owner's single sign-on settings; every generated secret is the
// same after recreating every container and after a corral restart.
func TestChatUILobeChatDB(t *testing.T) {
	img := chatsim.Image(t)
	ns := enginetest.Namespace(t)
	dataDir := t.TempDir()
	serve := func() (*daemonProc, string, engine.Status) {
		p := startServe(t, dataDir, "--namespace", ns, "--cpu-instances", "1", "--ollama-image", simimage.Image(t),
			"--chat-ui", "lobechat-db", "--chat-ui-image", img, "--chat-ui-db-image", img, "--chat-ui-s3-image", img,
			"--chat-ui-env", "AUTH_SSO_PROVIDERS=generic-oidc", "--chat-ui-env", "AUTH_GENERIC_OIDC_ISSUER=https://sso.corral.test", "--chat-addr", "127.0.0.1:0")
		st := p.waitStatus(t, "all three healthy", 90*time.Second, func(st engine.Status) bool { return allHealthy(1)(st) && appsHealthy(3)(st) })
		return p, "http://" + p.logAttr(t, "chat UI listening", "addr"), st
	}
	t.Parallel()
	p, chat, st := serve()
	apps := map[string]engine.AppStatus{}
	for _, a := range st.Apps {
		apps[a.Role] = a
	}
	db, s3, app := apps["chatui-db"], apps["chatui-s3"], apps["chatui"]
	if db.Volume != ns+"-chatui-db" || s3.Volume != ns+"-chatui-s3" || app.Name != ns+"-chatui" {
		t.Fatalf("apps %+v", st.Apps)
	}
	// The app was created only once both companions were healthy.
	p.mu.Lock()
	var healthyAt = map[string]int{}
	created := -1
	for i, r := range p.log {
		if r["msg"] == "instance phase" && r["to"] == "healthy" {
			healthyAt[fmt.Sprint(r["instance"])] = i
		}
		if r["msg"] == "created container" && r["instance"] == app.Name && created < 0 {
			created = i
		}
	}
	p.mu.Unlock()
	if hd, ok := healthyAt[db.Name]; !ok || created < hd {
		t.Errorf("the app was created (log line %d) before the database was healthy (%d)", created, hd)
	}
	if hs, ok := healthyAt[s3.Name]; !ok || created < hs {
		t.Errorf("the app was created (log line %d) before the object store was healthy (%d)", created, hs)
	}

	env := chatEnv(t, chat)
	if !strings.Contains(env["DATABASE_URL"], "@"+db.Name+":5432/lobechat") || env["S3_ENDPOINT"] != "http://"+s3.Name+":9000" ||
		!strings.HasSuffix(env["OPENAI_PROXY_URL"], "/v1") || !strings.HasPrefix(env["OPENAI_API_KEY"], "crl_") ||
		env["AUTH_SSO_PROVIDERS"] != "generic-oidc" || env["AUTH_GENERIC_OIDC_ISSUER"] != "https://sso.corral.test" ||
		!strings.Contains(env["JWKS_KEY"], `"alg":"RS256"`) || env["ACCESS_CODE"] != "" {
		t.Fatalf("the app's wiring: %v", env)
	}
	var buckets struct {
		Buckets []struct {
			Name      string `json:"name"`
			AccessKey string `json:"access_key"`
		} `json:"buckets"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(buckets.Buckets) == 0 && time.Now().Before(deadline) {
		sim(t, s3.Endpoint, "GET", "/_sim/buckets", "", &buckets)
		time.Sleep(200 * time.Millisecond)
	}
	if len(buckets.Buckets) == 0 || buckets.Buckets[0].Name != "lobe" || buckets.Buckets[0].AccessKey != env["S3_ACCESS_KEY_ID"] {
		t.Fatalf("buckets %+v", buckets)
	}

	f := &fleet{daemonProc: p}
	if out, err := f.cli(t, "chat-ui", "recreate"); err != nil {
		t.Fatalf("chat-ui recreate: %v\n%s", err, out)
	}
	p.waitStatus(t, "all recreated", 90*time.Second, func(st engine.Status) bool {
		for _, a := range st.Apps {
			if a.Phase != engine.PhaseHealthy || a.ContainerID == apps[a.Role].ContainerID {
				return false
			}
		}
		return len(st.Apps) == 3
	})
	same := func(when string, got map[string]string) {
		t.Helper()
		for _, k := range []string{"DATABASE_URL", "KEY_VAULTS_SECRET", "AUTH_SECRET", "JWKS_KEY", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "OPENAI_API_KEY"} {
			if got[k] != env[k] {
				t.Errorf("%s changed %s", k, when)
			}
		}
	}
	same("after recreating every container", chatEnv(t, chat))
	p.stop(t, syscall.SIGTERM)
	_, chat, _ = serve()
	same("after a restart", chatEnv(t, chat))
}

// TestChatUILobeChatDBFilesOnDomain: with a domain, LobeHub's object
// store is its S3 endpoint on the domain itself: a browser's upload to
// the bucket's path reaches the store with the host it was signed for,
// and the app resolves the domain to this host.
func TestChatUILobeChatDBFilesOnDomain(t *testing.T) {
	img := chatsim.Image(t)
	const domain = "files.ui.corral.test"
	ca, domainArgs := pebbleDomain(t, domain)
	dataDir := t.TempDir()
	p := startServe(t, dataDir, append([]string{"--namespace", enginetest.Namespace(t), "--cpu-instances", "1", "--ollama-image", simimage.Image(t),
		"--chat-ui", "lobechat-db", "--chat-ui-image", img, "--chat-ui-db-image", img, "--chat-ui-s3-image", img}, domainArgs...)...)
	st := p.waitStatus(t, "all healthy", 90*time.Second, func(st engine.Status) bool { return allHealthy(1)(st) && appsHealthy(3)(st) })
	waitCertificate(t, dataDir)
	site := fmt.Sprintf("https://%s:%d", domain, ca.TLSPort)
	hc := ca.Client(t)
	resp, err := hc.Get(site + "/env")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if env["S3_ENDPOINT"] != site || env["APP_URL"] != site {
		t.Fatalf("S3_ENDPOINT %q, APP_URL %q, want %s", env["S3_ENDPOINT"], env["APP_URL"], site)
	}
	var app engine.AppStatus
	for _, a := range st.Apps {
		if a.Role == "chatui" {
			app = a
		}
	}
	if out, err := exec.Command("docker", "inspect", "-f", "{{json .HostConfig.ExtraHosts}}", app.Name).CombinedOutput(); err != nil || !strings.Contains(string(out), domain+":host-gateway") {
		t.Fatalf("the app's extra hosts: %s %v", out, err)
	}

	// The bucket is made once the store is up; then an upload through the
	// domain lands in it, addressed to the domain.
	var object struct {
		Data string `json:"data"`
		Host string `json:"host"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("PUT", site+"/lobe/files/hello.txt", strings.NewReader("hello"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload through the domain: %d", resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err = hc.Get(site + "/lobe/files/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&object)
	resp.Body.Close()
	if err != nil || object.Data != "hello" || object.Host != fmt.Sprintf("%s:%d", domain, ca.TLSPort) {
		t.Fatalf("the object as the store got it: %+v %v", object, err)
	}
}
