package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	chatsim "corral/cmd/chatui-sim/simimage"
	"corral/engine"
	"corral/engine/keys"
)

// chatUIHealthy waits for the chat UI container to be healthy.
func chatUIHealthy(st engine.Status) bool {
	return len(st.Apps) == 1 && st.Apps[0].Phase == engine.PhaseHealthy
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
	st := f.waitStatus(t, "the chat UI healthy", 60*time.Second, chatUIHealthy)
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
		return chatUIHealthy(st) && st.Apps[0].ContainerID != app.ContainerID
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
