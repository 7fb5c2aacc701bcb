package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"corral/cmd/ollama-sim/simimage"
	"corral/engine/enginetest"
	"corral/proxy/certs"
	"corral/proxy/certs/acmetest"
)

// simCounters are the simulator's counters a front door test reads.
type simCounters struct {
	InFlight  int `json:"in_flight"`
	Cancelled int `json:"cancelled"`
}

// TestStalledClientFreesTheSlot: on real Docker with a simulator
// instance, a key holder who stops reading a stream is cut after
// --stall-timeout and the instance's request is cancelled (the simulator
// counts it, and has nothing in flight after), while a stream that flows
// for longer than that lives to its end.
func TestStalledClientFreesTheSlot(t *testing.T) {
	f := startFleet(t, 1, "--stall-timeout", "2s")
	ep := f.st.Instances[0].Endpoint
	sim(t, ep, "POST", "/_sim/reset", "", nil)

	// A stream of a million tokens as fast as they come, read by no one:
	// a small receive buffer fills, then the kernel's send buffers.
	host := strings.TrimPrefix(f.gateway, "http://")
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"model":"llama3.2:1b","stream":true,"max_tokens":1000000,"messages":[{"role":"user","content":"go on"}]}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", host, f.key, len(body), body)
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("status line %q, %v", status, err)
	}
	start := time.Now()
	var c simCounters
	for {
		sim(t, ep, "GET", "/_sim/stats", "", &c)
		if c.Cancelled == 1 && c.InFlight == 0 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the instance still serves the stalled client after %s: %+v", time.Since(start).Round(time.Second), c)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("stalled client cut and its instance request cancelled %s after it stopped reading", time.Since(start).Round(100*time.Millisecond))
	// The connection is closed: whatever is buffered, then its end.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("the stalled connection was not closed: %v", err)
	}

	// A stream that flows for 4 s, twice the stall timeout, is whole.
	sim(t, ep, "POST", "/_sim/config", `{"token_interval":"100ms"}`, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", f.gateway+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama3.2:1b","stream":true,"max_tokens":40,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+f.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.HasSuffix(string(all), "data: [DONE]\n\n") || strings.Count(string(all), "\"content\"") < 40 {
		t.Fatalf("a flowing stream was cut: %v, ends %q", err, tail(string(all), 200))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestServeHTTPSWithPebble: `corral serve --domain` on real Docker gets
// its certificate from an ACME CA (Pebble, in this process), serves the
// gateway over HTTPS with HTTP/2 to the official OpenAI client, the
// admin pages over HTTPS with the same certificate on their own port,
// shows the certificate in `corral status`, and after a restart serves
// the stored certificate without ordering again.
func TestServeHTTPSWithPebble(t *testing.T) {
	const domain = "chat.serve.corral.test"
	ca, domainArgs := pebbleDomain(t, domain)
	image := simimage.Image(t)
	ns := enginetest.Namespace(t)
	dataDir := t.TempDir()
	args := append([]string{"--namespace", ns, "--cpu-instances", "1", "--ollama-image", image, "--admin-addr", "127.0.0.1:0"}, domainArgs...)
	p := startServe(t, dataDir, args...)
	p.waitStatus(t, "1 healthy instance", 60*time.Second, allHealthy(1))
	waitCertificate(t, dataDir)
	if n := ca.Orders(); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}

	var out, errOut bytes.Buffer
	if err := newApp(&out, &errOut).run(context.Background(), []string{"keys", "create", "tester", "--data-dir", dataDir}); err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut.String())
	}
	key := strings.TrimSpace(out.String())
	hc := ca.Client(t)
	f := &fleet{daemonProc: p, gateway: fmt.Sprintf("https://%s:%d", domain, ca.TLSPort), key: key, client: hc}
	f.waitRoutable(t, "llama3.2:1b")

	// The official client, over HTTPS.
	client := openai.NewClient(option.WithBaseURL(f.gateway+"/v1/"), option.WithAPIKey(key), option.WithHTTPClient(hc))
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:    "llama3.2:1b",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello over https")},
	})
	chunks := 0
	for stream.Next() {
		chunks++
	}
	if err := stream.Err(); err != nil || chunks < 2 {
		t.Fatalf("stream over HTTPS: %d chunks, %v", chunks, err)
	}
	resp, err := hc.Get(f.gateway + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("HTTPS answered %s with header %v", resp.Proto, resp.Header)
	}
	// HTTP redirects.
	resp, err = hc.Get(fmt.Sprintf("http://%s:%d/v1/models", domain, ca.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("HTTP answered %d, want 308", resp.StatusCode)
	}
	// The admin pages: HTTPS with the same certificate, on their own port.
	_, adminPort, _ := net.SplitHostPort(p.logAttr(t, "admin API listening", "addr"))
	resp, err = hc.Get(fmt.Sprintf("https://%s:%s/login", domain, adminPort))
	if err != nil {
		t.Fatalf("admin over HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin login page: %d", resp.StatusCode)
	}
	// corral status shows the certificate.
	out.Reset()
	if err := newApp(&out, &errOut).run(context.Background(), []string{"status", "--data-dir", dataDir}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "Certificates for "+domain+": valid (acme") || !strings.Contains(s, "issued by CN=Pebble") {
		t.Fatalf("corral status:\n%s", s)
	}

	// A restart serves the stored certificate: no second order.
	p.stop(t, syscall.SIGTERM)
	p = startServe(t, dataDir, args...)
	waitCertificate(t, dataDir)
	resp, err = hc.Get(f.gateway + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := ca.Orders(); n != 1 {
		t.Fatalf("the restart ordered again: %d orders", n)
	}
}

// pebbleDomain starts an ACME CA (Pebble) in the test and returns it with
// the serve flags that have corral get domain's certificate from it, on
// the loopback ports its challenges reach.
func pebbleDomain(t *testing.T, domain string) (*acmetest.CA, []string) {
	t.Helper()
	ca := acmetest.Start(t, acmetest.Options{})
	root := filepath.Join(t.TempDir(), "acme-root.pem")
	if err := os.WriteFile(root, ca.WFERootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca, []string{"--domain", domain, "--email", "owner@corral.test", "--acme-ca", ca.DirectoryURL, "--acme-ca-root", root,
		"--https-addr", fmt.Sprintf("127.0.0.1:%d", ca.TLSPort), "--http-addr", fmt.Sprintf("127.0.0.1:%d", ca.HTTPPort)}
}

// waitCertificate waits until the running corral has a valid certificate.
func waitCertificate(t testing.TB, dataDir string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var st statusReport
	for time.Now().Before(deadline) {
		st = statusReport{}
		err := newDaemon(dataDir).getJSON(context.Background(), "/api/v1/status", &st)
		if err == nil && st.FrontDoor != nil && st.FrontDoor.Certificates != nil &&
			st.FrontDoor.Certificates.State == certs.StateValid && len(st.FrontDoor.Certificates.Certificates) > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no certificate: %+v", st.FrontDoor)
}
