package frontdoor_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"corral/engine/store"
	"corral/proxy/certs"
	"corral/proxy/certs/acmetest"
	"corral/proxy/frontdoor"
	"corral/proxy/gateway"
)

// tlsSite is a front door with a domain, over a gateway in front of one
// instance that streams chunks as the test releases them.
type tlsSite struct {
	t      *testing.T
	ca     *acmetest.CA
	st     *store.Store
	certs  *certs.Manager
	door   *frontdoor.Server
	cancel context.CancelFunc
	done   chan struct{}
	domain string
	// where the front door listens
	httpPort, tlsPort int
	release           chan struct{} // one chunk per receive
}

type tlsOpts struct {
	validity    time.Duration
	ratio       float64
	alwaysValid bool
	// challengesElsewhere points the CA's validation at ports nothing
	// listens on, so every challenge fails.
	challengesElsewhere bool
	// http01Elsewhere does it for HTTP-01 alone: the certificate must come
	// through TLS-ALPN-01 on the HTTPS listener.
	http01Elsewhere bool
	caURL           string // overrides the CA's directory (an unreachable one)
	dataDir         string // a store to reuse (a restart)
	ca              *acmetest.CA
	chatUI          *url.URL // the chat UI slot's app; nil: none
}

type oneUpstream struct{ s *gateway.Snapshot }

func (u oneUpstream) Snapshot() *gateway.Snapshot { return u.s }

type goodKey struct{}

func (goodKey) Authorize(_ context.Context, key, _ string) (string, error) {
	if key != "good" {
		return "", errors.New("unknown API key")
	}
	return "tester", nil
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// streamingInstance answers chat completions with three SSE chunks, each
// sent when release gives one, then the usage chunk and [DONE].
func streamingInstance(t *testing.T, release chan struct{}) *url.URL {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := range 3 {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	u, _ := url.Parse("http://" + l.Addr().String())
	return u
}

func startTLSSite(t *testing.T, domain string, o tlsOpts) *tlsSite {
	t.Helper()
	ca := o.ca
	if ca == nil {
		ca = acmetest.Start(t, acmetest.Options{Validity: o.validity, AlwaysValid: o.alwaysValid})
	}
	// The front door listens where the CA validates, unless challenges are
	// to fail: then the CA looks where nothing listens.
	httpPort, tlsPort := ca.HTTPPort, ca.TLSPort
	if o.challengesElsewhere {
		httpPort, tlsPort = acmetest.FreePort(t), acmetest.FreePort(t)
	}
	if o.http01Elsewhere {
		httpPort = acmetest.FreePort(t)
	}
	dir := o.dataDir
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	caURL := ca.DirectoryURL
	if o.caURL != "" {
		caURL = o.caURL
	}
	cm, err := certs.New(certs.Config{
		Domains: []string{domain}, Email: "owner@corral.test", CA: caURL, CARoots: ca.WFEPool,
		HTTPPort: httpPort, TLSPort: tlsPort, ListenHost: "127.0.0.1",
		Storage: certs.NewStorage(st), RenewCheck: time.Second, RenewalRatio: o.ratio, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsSite{t: t, ca: ca, st: st, certs: cm, domain: domain, httpPort: httpPort, tlsPort: tlsPort, release: make(chan struct{}), done: make(chan struct{})}
	up := streamingInstance(t, s.release)
	snap := &gateway.Snapshot{Version: 1, Upstreams: []gateway.Upstream{{Name: "i0", URL: up, Healthy: true, Weight: 1, Parallel: 4,
		Models: map[string]bool{"m:latest": true}, Loaded: map[string]bool{"m:latest": true}}}}
	gw := gateway.New(gateway.Config{Logger: log}, oneUpstream{snap}, goodKey{})
	t.Cleanup(gw.Close)
	doorCfg := frontdoor.Config{
		Addr:      "127.0.0.1:0",
		HTTPSAddr: fmt.Sprintf("127.0.0.1:%d", tlsPort),
		HTTPAddr:  fmt.Sprintf("127.0.0.1:%d", httpPort),
		Domains:   []string{domain},
		TLS:       cm,
		Gateway:   gw,
		Logger:    log,
	}
	if o.chatUI != nil {
		doorCfg.ChatUI = frontdoor.NewWebProxy(o.chatUI, log)
	}
	door, err := frontdoor.Listen(doorCfg)
	if err != nil {
		t.Fatal(err)
	}
	s.door = door
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		door.Serve(ctx, time.Second)
	}()
	if err := cm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// stop ends the site and closes its store, as a corral process exits.
func (s *tlsSite) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.certs.Stop()
	s.st.Close()
	s.cancel = nil
}

func (s *tlsSite) httpsURL(path string) string {
	return fmt.Sprintf("https://%s:%d%s", s.domain, s.tlsPort, path)
}

// waitState waits for the certificates to reach a state.
func (s *tlsSite) waitState(want certs.State) certs.Status {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.certs.Status()
		if st.State == want && (want != certs.StateValid || len(st.Certificates) > 0) {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("certificates %s, want %s: %+v", st.State, want, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// servedLeaf is the certificate the HTTPS listener presents for the name.
func (s *tlsSite) servedLeaf() *x509.Certificate {
	s.t.Helper()
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.tlsPort), &tls.Config{ServerName: s.domain, RootCAs: s.ca.Roots})
	if err != nil {
		s.t.Fatalf("TLS to %s: %v", s.domain, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// TestHTTPSObtainsAndStreams: a certificate is obtained from the CA for
// the domain and served; a chat completion streams over HTTP/2 chunk by
// chunk; HTTP redirects with 308; the security headers are there; the
// plain listener serves meanwhile.
func TestHTTPSObtainsAndStreams(t *testing.T) {
	s := startTLSSite(t, "chat.obtain.corral.test", tlsOpts{})
	st := s.waitState(certs.StateValid)
	if len(st.Certificates) != 1 || !strings.Contains(st.Certificates[0].Issuer, "Pebble") || st.Certificates[0].NotAfter.Before(time.Now()) ||
		!st.Certificates[0].NextRenewal.Before(st.Certificates[0].NotAfter) || st.Source != certs.SourceACME || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
	if n := s.ca.Orders(); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
	c := s.ca.Client(t)

	req, _ := http.NewRequest("POST", s.httpsURL("/v1/chat/completions"), strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("Authorization", "Bearer good")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("%s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}
	for k, v := range map[string]string{"Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		// The instance sends the next chunk only once the last one has
		// arrived here: nothing is held back on the way.
		s.release <- struct{}{}
		line, err := rd.ReadString('\n')
		if err != nil || !strings.Contains(line, fmt.Sprintf(`"t%d"`, i)) {
			t.Fatalf("chunk %d: %q %v", i, line, err)
		}
		rd.ReadString('\n')
	}
	rest, _ := io.ReadAll(rd)
	if !strings.HasSuffix(string(rest), "\n\ndata: [DONE]\n\n") {
		t.Fatalf("end %q", rest)
	}

	// HTTP: 308 to the same URL on HTTPS, with its port, as it is not 443.
	resp, err = c.Get(fmt.Sprintf("http://%s:%d/v1/models?x=1", s.domain, s.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := s.httpsURL("/v1/models?x=1"); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("HTTP answered %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("redirect headers %v", resp.Header)
	}
	// Without a chat UI the domain's root is the gateway: its own 401.
	resp, err = c.Get(s.httpsURL("/api/tags"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/api/tags without a key: %d", resp.StatusCode)
	}
	// The plain listener serves the gateway too.
	resp, err = http.Get("http://" + s.door.Addr("http").String() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("plain /v1/models without a key: %d", resp.StatusCode)
	}
}

// TestHTTPSRenewsAndRestartReusesTheStore: a short-lived certificate is
// renewed while serving, the new one is served without a restart, and
// after a restart the stored one is served, not ordered again.
func TestHTTPSRenewsAndRestartReusesTheStore(t *testing.T) {
	dir := t.TempDir()
	// 20 s certificates renewed with three quarters of their life left:
	// the first renewal comes about 5 s after issue.
	s := startTLSSite(t, "chat.renew.corral.test", tlsOpts{validity: 20 * time.Second, ratio: 0.75, dataDir: dir})
	s.waitState(certs.StateValid)
	first := s.servedLeaf()
	deadline := time.Now().Add(40 * time.Second)
	for {
		if s.certs.Status().Obtained >= 2 {
			if leaf := s.servedLeaf(); leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not renewed: status %+v, orders %d", s.certs.Status(), s.ca.Orders())
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.stop()

	// A restart on the same store with a long-lived CA profile: the
	// stored certificate (valid for seconds still) is served at once.
	orders := s.ca.Orders()
	r := startTLSSite(t, "chat.renew.corral.test", tlsOpts{dataDir: dir, ca: s.ca, ratio: 0.01})
	if got := r.certs.Status(); got.State != certs.StateValid || len(got.Certificates) != 1 {
		t.Fatalf("after restart: %+v, want the stored certificate at once", got)
	}
	r.servedLeaf()
	if n := s.ca.Orders(); n != orders {
		t.Fatalf("restart ordered again: %d orders, had %d", n, orders)
	}
}

// TestTwoManagersOneStoreOrderOnce: two certificate managers over one
// store (two front doors of one corral, or a second process taking
// over) order a name once: the store's lock makes the second wait, and it
// then finds the certificate.
func TestTwoManagersOneStoreOrderOnce(t *testing.T) {
	ca := acmetest.Start(t, acmetest.Options{AlwaysValid: true})
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var wg sync.WaitGroup
	var valid atomic.Int32
	for range 2 {
		cm, err := certs.New(certs.Config{Domains: []string{"chat.twice.corral.test"}, Email: "owner@corral.test", CA: ca.DirectoryURL, CARoots: ca.WFEPool,
			HTTPPort: ca.HTTPPort, TLSPort: ca.TLSPort, ListenHost: "127.0.0.1", Storage: certs.NewStorage(st), RenewCheck: time.Second, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cm.Stop)
		wg.Go(func() {
			if err := cm.Start(t.Context()); err != nil {
				t.Error(err)
				return
			}
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if s := cm.Status(); s.State == certs.StateValid && len(s.Certificates) == 1 {
					valid.Add(1)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Errorf("no certificate: %+v", cm.Status())
		})
	}
	wg.Wait()
	if valid.Load() != 2 || ca.Orders() != 1 {
		t.Fatalf("%d managers with the certificate, %d orders; want 2 and 1", valid.Load(), ca.Orders())
	}
}

// TestACMEFailureKeepsServing: when the CA cannot validate the domain,
// or cannot be reached, the status says so with a hint and retries, and
// the plain listener's /v1 keeps answering.
func TestACMEFailureKeepsServing(t *testing.T) {
	cases := []struct {
		name     string
		opts     tlsOpts
		wantHint string
	}{
		{"challenges fail", tlsOpts{challengesElsewhere: true}, "check that the domain's DNS points to this server"},
		{"CA unreachable", tlsOpts{caURL: "https://127.0.0.1:1/dir"}, "could not complete the exchange with the CA"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startTLSSite(t, fmt.Sprintf("chat.fail%d.corral.test", i), tc.opts)
			st := s.waitState(certs.StateRetrying)
			if st.LastError == "" || !strings.Contains(st.Hint, tc.wantHint) || st.LastErrorAt.IsZero() {
				t.Fatalf("status %+v, want an error and a hint containing %q", st, tc.wantHint)
			}
			req, _ := http.NewRequest("POST", "http://"+s.door.Addr("http").String()+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
			req.Header.Set("Authorization", "Bearer good")
			go func() {
				for range 3 {
					s.release <- struct{}{}
				}
			}()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
				t.Fatalf("plain /v1 while ACME fails: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestHTTPSChatUISlot: on the domain, / is the chat UI (a page with the
// page headers, and a websocket that echoes over wss) while /v1/ stays
// the gateway's.
func TestHTTPSChatUISlot(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/socket" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				typ, b, err := c.Read(context.Background())
				if err != nil || c.Write(context.Background(), typ, b) != nil {
					return
				}
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>chat</title><p>proto %s host %s", r.Header.Get("X-Forwarded-Proto"), r.Host)
	}))
	t.Cleanup(app.Close)
	au, _ := url.Parse(app.URL)
	s := startTLSSite(t, "chat.ui.corral.test", tlsOpts{chatUI: au})
	s.waitState(certs.StateValid)
	c := s.ca.Client(t)

	resp, err := c.Get(s.httpsURL("/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "proto https host chat.ui.corral.test"; !strings.Contains(string(body), want) || resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" ||
		resp.Header.Get("Strict-Transport-Security") == "" || resp.ProtoMajor != 2 {
		t.Fatalf("chat UI page over %s: %q, header %v", resp.Proto, body, resp.Header)
	}
	resp, err = c.Get(s.httpsURL("/v1/models"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/v1/models without a key: %d, want the gateway's 401", resp.StatusCode)
	}

	// Websockets go over HTTP/1.1: the client offers only that.
	tr := c.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, fmt.Sprintf("wss://%s:%d/socket", s.domain, s.tlsPort), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for _, msg := range []string{"hello", "again"} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, b, err := ws.Read(ctx); err != nil || string(b) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, b, err)
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

// TestHTTPSTLSALPNChallenge: when the CA cannot reach the HTTP port, the
// certificate comes through the TLS-ALPN-01 challenge, answered by the
// HTTPS listener itself.
func TestHTTPSTLSALPNChallenge(t *testing.T) {
	s := startTLSSite(t, "chat.alpn.corral.test", tlsOpts{http01Elsewhere: true})
	st := s.waitState(certs.StateValid)
	if len(st.Certificates) != 1 {
		t.Fatalf("status %+v", st)
	}
	s.servedLeaf()
}
