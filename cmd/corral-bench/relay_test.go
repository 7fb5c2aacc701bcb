package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRelay: requests on one kept-alive connection reach the upstream
// on one connection of the relay's, answers come back whole, and the
// relay closes its connections when its context ends.
func TestRelay(t *testing.T) {
	var upConns atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			upConns.Add(1)
		}
	}
	up.Start()
	defer up.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serveRelay(ctx, []string{"--upstream", up.URL}, pw, io.Discard) }()
	addr, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", strings.TrimSpace(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i, path := range []string{"/a", "/b"} {
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		if want := "POST " + path + " hi"; string(got) != want {
			t.Errorf("request %d: answer %q, want %q", i, got, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("relay returned %v, want nil once its context ended", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay still running 5 s after its context ended")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client connection after the relay stopped: read %d, %v; want EOF", n, err)
	}
	if n := upConns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1 for one client connection", n)
	}
}

func TestRelayRefusesBadUpstream(t *testing.T) {
	err := serveRelay(context.Background(), []string{"--upstream", "127.0.0.1:1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--upstream") {
		t.Fatalf("err %v, want one naming --upstream", err)
	}
}

// TestBenchRelayBaseline: --baseline relay measures the relay beside the
// gateway, paired, and names it in the report.
func TestBenchRelayBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and builds the simulator")
	}
	cfg := defaultConfig()
	cfg.Scenarios = "A"
	cfg.Levels = []int{1}
	cfg.Warmup = 50 * time.Millisecond
	cfg.Duration = 250 * time.Millisecond
	cfg.Rounds = 1
	cfg.Chunks, cfg.FirstToken, cfg.Interval = 4, 2*time.Millisecond, time.Millisecond
	cfg.MinStreams = 20
	cfg.Nginx = "off"
	cfg.Baseline = baselineRelay
	text, rep := runBench(t, &cfg, 60*time.Second)
	for _, want := range []string{"baseline: a bare TCP relay", "c=1 baseline: added TTFT p50", "gateway TTFT minus baseline's, paired: median", "baseline 0"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(rep.BaselineCommand, " relay --listen ") {
		t.Errorf("baseline ran as %q, want this binary's relay", rep.BaselineCommand)
	}
	if n := rep.Failures["baseline"]; n != 0 {
		t.Errorf("relay: %d failed streams\n%s", n, text)
	}
}
