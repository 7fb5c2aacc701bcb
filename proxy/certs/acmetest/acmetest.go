// Package acmetest runs Pebble, Let's Encrypt's test ACME CA, inside the test
// process so that corral's tests can obtain real certificates (for example with
// certmagic) without any network access beyond loopback.
//
// It is for tests only: Pebble is deliberately insecure and misbehaves in
// ways no production CA would.
//
// Start wires Pebble's in-memory store, CA, validation authority (VA) and
// web front end (WFE) together, serves the WFE over HTTPS on 127.0.0.1 and
// runs a tiny DNS server on 127.0.0.1 that resolves every name to 127.0.0.1,
// so Pebble's VA validates HTTP-01 challenges against 127.0.0.1:HTTPPort and
// TLS-ALPN-01 challenges against 127.0.0.1:TLSPort.
package acmetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// newOrderPath is Pebble's (unexported) new-order endpoint, as advertised in
// its directory.
const newOrderPath = "/order-plz"

// Options configures Start.
type Options struct {
	// HTTPPort is the port Pebble's VA connects to (on 127.0.0.1) for HTTP-01
	// challenges. 0 picks a free loopback port, reported in CA.HTTPPort.
	HTTPPort int
	// TLSPort is the port Pebble's VA connects to (on 127.0.0.1) for
	// TLS-ALPN-01 challenges. 0 picks a free loopback port, reported in
	// CA.TLSPort.
	TLSPort int
	// Validity is the lifetime of issued certificates (whole seconds). 0 keeps
	// Pebble's default (90 days).
	Validity time.Duration
	// AlwaysValid makes Pebble's VA accept every challenge without
	// contacting HTTPPort or TLSPort.
	AlwaysValid bool
}

// CA is a running in-process Pebble instance.
type CA struct {
	// DirectoryURL is the ACME directory, https://127.0.0.1:port/dir.
	DirectoryURL string
	// HTTPPort and TLSPort are the challenge ports Pebble validates against
	// (Options' values, or the free ports chosen for them).
	HTTPPort, TLSPort int

	// Roots trusts the certificates Pebble issues (Pebble's root; the
	// intermediate comes in the issued chain). RootPEM is the same root in
	// PEM form, for a CA-root file.
	Roots   *x509.CertPool
	RootPEM []byte

	// WFEPool trusts the HTTPS certificate of the ACME server itself, which an
	// ACME client needs (e.g. certmagic.ACMEIssuer.TrustedRoots).
	// WFERootPEM is the same certificate in PEM form.
	WFEPool    *x509.CertPool
	WFERootPEM []byte

	orders    atomic.Int64
	closeOnce sync.Once
	closeFn   func()
}

// Orders reports how many new-order requests Pebble has accepted (answered
// with 201 Created).
func (c *CA) Orders() int { return int(c.orders.Load()) }

// Close stops the ACME and DNS servers. It is safe to call more than once and
// is also registered with t.Cleanup by Start. Pebble's VA keeps one idle
// goroutine per CA that cannot be stopped.
func (c *CA) Close() { c.closeOnce.Do(c.closeFn) }

// envMu serialises the setting of Pebble's environment variables, which
// va.New and wfe.New read when they are called (not at init). Start sets them
// around those calls and restores them afterwards instead of using t.Setenv,
// so it may be used from parallel tests.
var envMu sync.Mutex

// Start runs Pebble in-process and stops it when the test ends.
func Start(t testing.TB, o Options) *CA {
	t.Helper()

	c := &CA{HTTPPort: o.HTTPPort, TLSPort: o.TLSPort}
	if c.HTTPPort == 0 {
		c.HTTPPort = FreePort(t)
	}
	if c.TLSPort == 0 {
		c.TLSPort = FreePort(t)
	}

	lw := &logWriter{t: t, verbose: testing.Verbose()}
	logger := log.New(lw, "pebble ", log.Lmicroseconds)

	dnsAddr, stopDNS := startDNS(t, logger)

	profile := ca.Profile{Description: "The default profile"}
	if o.Validity > 0 {
		profile.ValidityPeriod = uint64((o.Validity + time.Second - 1) / time.Second)
	}

	store := db.NewMemoryStore()
	// ecdsa: RSA key generation would make every Start noticeably slower.
	pebbleCA := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": profile})

	alwaysValid := "0"
	if o.AlwaysValid {
		alwaysValid = "1"
	}
	var wfeImpl wfe.WebFrontEndImpl
	withEnv(map[string]string{
		"PEBBLE_VA_NOSLEEP":      "1", // no random 0-5 s sleep before each validation
		"PEBBLE_VA_SLEEPTIME":    "",
		"PEBBLE_VA_ALWAYS_VALID": alwaysValid,
		"PEBBLE_WFE_NONCEREJECT": "0", // default rejects 5% of good nonces
		"PEBBLE_AUTHZREUSE":      "0", // default reuses valid authzs 50% of the time; always validate
	}, func() {
		vaImpl := va.New(logger, c.HTTPPort, c.TLSPort, false, dnsAddr, store)
		wfeImpl = wfe.New(logger, store, vaImpl, pebbleCA, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	})

	// Pebble's root, as its management interface serves it at /roots/0.
	rec := httptest.NewRecorder()
	wfeImpl.ManagementHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, wfe.RootCertPath+"0", nil))
	if rec.Code != http.StatusOK {
		stopDNS()
		t.Fatalf("acmetest: fetching Pebble root: status %d: %s", rec.Code, rec.Body.String())
	}
	c.RootPEM = rec.Body.Bytes()
	c.Roots = x509.NewCertPool()
	if !c.Roots.AppendCertsFromPEM(c.RootPEM) {
		stopDNS()
		t.Fatalf("acmetest: Pebble root is not PEM: %q", c.RootPEM)
	}

	acme := wfeImpl.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == newOrderPath {
			sw := &statusWriter{ResponseWriter: w}
			acme.ServeHTTP(sw, r)
			if sw.status == http.StatusCreated {
				c.orders.Add(1)
			}
			return
		}
		acme.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = logger
	srv.StartTLS()

	c.DirectoryURL = srv.URL + wfe.DirectoryPath
	c.WFEPool = x509.NewCertPool()
	c.WFEPool.AddCert(srv.Certificate())
	c.WFERootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	c.closeFn = func() {
		srv.CloseClientConnections()
		srv.Close()
		stopDNS()
		lw.close()
	}
	t.Cleanup(c.Close)
	return c
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("acmetest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func withEnv(vars map[string]string, f func()) {
	envMu.Lock()
	defer envMu.Unlock()
	for k, v := range vars {
		old, had := os.LookupEnv(k)
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	f()
}

// startDNS serves DNS on 127.0.0.1 (UDP and TCP, same port; Pebble's VA uses
// TCP): A 127.0.0.1 for every name, an empty NOERROR answer for anything else.
func startDNS(t testing.TB, logger *log.Logger) (addr string, stop func()) {
	t.Helper()
	var tcpLn net.Listener
	var udpConn net.PacketConn
	var err error
	for range 10 {
		tcpLn, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			continue
		}
		udpConn, err = net.ListenPacket("udp", tcpLn.Addr().String())
		if err == nil {
			break
		}
		tcpLn.Close()
	}
	if err != nil {
		t.Fatalf("acmetest: DNS listeners: %v", err)
	}

	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		for _, q := range req.Question {
			if q.Qtype == dns.TypeA && q.Qclass == dns.ClassINET {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
					A:   net.IPv4(127, 0, 0, 1).To4(),
				})
			}
		}
		if err := w.WriteMsg(m); err != nil {
			logger.Printf("acmetest DNS: write: %v", err)
		}
	})

	servers := []*dns.Server{
		{Listener: tcpLn, Net: "tcp", Handler: handler},
		{PacketConn: udpConn, Net: "udp", Handler: handler},
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ActivateAndServe(); err != nil {
				logger.Printf("acmetest DNS (%s): %v", s.Net, err)
			}
		}()
		<-started
	}
	return tcpLn.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.ShutdownContext(ctx)
		}
		wg.Wait()
	}
}

// statusWriter records the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// logWriter sends Pebble's log to t.Log under -test.v and discards it
// otherwise; after close (end of test) it discards everything, since Pebble's
// VA goroutines can outlive the test.
type logWriter struct {
	t       testing.TB
	verbose bool
	mu      sync.Mutex
	closed  bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	if !w.verbose {
		return len(p), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *logWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// Client is an HTTP client for a test of a server with this CA's
// certificates: any name is dialled on loopback, at the port the URL
// gives, and certificates are checked against the CA's root. It does
// not follow redirects, so a test sees them.
func (c *CA) Client(t testing.TB) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		TLSClientConfig:   &tls.Config{RootCAs: c.Roots},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
