package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestServeShutsDown runs each role on a real listener and ends it the
// way SIGTERM does, with a websocket open and a chat stream running for
// the web roles: serve must return well inside Docker's 10 s.
func TestServeShutsDown(t *testing.T) {
	for _, role := range []string{"open-webui", "lobechat", "postgres", "minio"} {
		t.Run(role, func(t *testing.T) {
			// An upstream that streams one event and then never ends.
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write([]byte("data: {}\n\n"))
				http.NewResponseController(w).Flush()
				<-r.Context().Done()
			})
			upLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			upSrv := &http.Server{Handler: up}
			go upSrv.Serve(upLn)
			defer upSrv.Close()

			env := []string{"SIM_ROLE=" + role, "SIM_DATA_DIR=" + t.TempDir(),
				"OPENAI_API_BASE_URL=http://" + upLn.Addr().String(), "OPENAI_PROXY_URL=http://" + upLn.Addr().String()}
			cfg, err := loadConfig(env, nil)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- serve(ctx, cfg, ln, testLogger(t)) }()

			var env2 map[string]string
			getJSON(t, "http://"+addr+"/env", &env2)
			if env2["SIM_ROLE"] != role {
				t.Fatalf("env %v", env2)
			}

			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			var ws *websocket.Conn
			var stream *http.Response
			if cfg.Role.web() {
				ws, _, err = websocket.Dial(dctx, "ws://"+addr+"/ws", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer ws.CloseNow()
				stream, err = http.Post("http://"+addr+"/chat", "application/json", strings.NewReader(`{"model":"m","prompt":"p"}`))
				if err != nil {
					t.Fatal(err)
				}
				defer stream.Body.Close()
				if stream.StatusCode != http.StatusOK {
					t.Fatalf("chat: %d", stream.StatusCode)
				}
				if _, err := stream.Body.Read(make([]byte, 64)); err != nil {
					t.Fatal(err)
				}
			}

			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not return after the context ended")
			}
			if d := time.Since(start); d > shutdownTimeout+time.Second {
				t.Errorf("shutdown took %v", d)
			}
			if ws != nil {
				if _, _, err := ws.Read(dctx); err == nil {
					t.Error("websocket still open after shutdown")
				}
			}
		})
	}
}
