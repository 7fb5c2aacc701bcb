package acmetest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"corral/proxy/certs/acmetest"
)

// certmagic keeps pending challenges in process-wide state keyed by name,
// so tests running in parallel must obtain certificates for distinct names.
const testName = "chat.corral.test"

// obtain gets a certificate for name from ca with certmagic and returns the
// chain it stored (leaf first).
func obtain(t *testing.T, ca *acmetest.CA, name string, tlsALPN bool) []*x509.Certificate {
	t.Helper()
	logger := zap.NewNop()
	if testing.Verbose() {
		logger = zap.NewExample()
	}
	if !certmagic.SubjectQualifiesForPublicCert(name) {
		t.Fatalf("certmagic does not consider %q eligible for a public certificate", name)
	}

	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		RenewCheckInterval: time.Hour,
		OCSPCheckInterval:  time.Hour,
		Logger:             logger,
	})
	t.Cleanup(cache.Stop)
	cfg = certmagic.New(cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: t.TempDir()},
		Logger:  logger,
	})
	issuer := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                      ca.DirectoryURL,
		TestCA:                  ca.DirectoryURL,
		Email:                   "test@example.com",
		Agreed:                  true,
		TrustedRoots:            ca.WFEPool,
		ListenHost:              "127.0.0.1",
		AltHTTPPort:             ca.HTTPPort,
		AltTLSALPNPort:          ca.TLSPort,
		DisableHTTPChallenge:    tlsALPN,
		DisableTLSALPNChallenge: !tlsALPN,
		Logger:                  logger,
	})
	cfg.Issuers = []certmagic.Issuer{issuer}

	if !tlsALPN {
		// The server under test would serve HTTP-01 on 127.0.0.1:HTTPPort;
		// certmagic sees the port taken and relies on this handler. (For
		// TLS-ALPN-01 certmagic binds 127.0.0.1:TLSPort itself.)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ca.HTTPPort)))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: issuer.HTTPChallengeHandler(http.NotFoundHandler())}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cfg.ObtainCertSync(ctx, name); err != nil {
		t.Fatalf("ObtainCertSync(%q): %v", name, err)
	}
	cert, err := cfg.CacheManagedCertificate(ctx, name)
	if err != nil {
		t.Fatalf("CacheManagedCertificate(%q): %v", name, err)
	}
	var chain []*x509.Certificate
	for _, der := range cert.Certificate.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		t.Fatal("empty certificate chain")
	}
	return chain
}

func verify(t *testing.T, ca *acmetest.CA, chain []*x509.Certificate, name string) {
	t.Helper()
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Roots, Intermediates: inter}); err != nil {
		t.Fatalf("leaf does not verify against ca.Roots for %q: %v", name, err)
	}
	// RootPEM must carry the same root.
	fromPEM := x509.NewCertPool()
	if !fromPEM.AppendCertsFromPEM(ca.RootPEM) {
		t.Fatal("RootPEM holds no certificate")
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: fromPEM, Intermediates: inter}); err != nil {
		t.Fatalf("leaf does not verify against RootPEM: %v", err)
	}
	// The ACME server's own certificate must not be what signs leaves.
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: ca.WFEPool, Intermediates: inter}); err == nil {
		t.Fatal("leaf unexpectedly verifies against WFEPool")
	}
}

func TestObtainHTTP01(t *testing.T) {
	t.Parallel()
	ca := acmetest.Start(t, acmetest.Options{})

	// The directory is reachable with WFERootPEM alone.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.WFERootPEM) {
		t.Fatal("WFERootPEM holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(ca.DirectoryURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	client.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", ca.DirectoryURL, resp.Status)
	}
	if n := ca.Orders(); n != 0 {
		t.Fatalf("Orders() before obtaining = %d, want 0", n)
	}

	chain := obtain(t, ca, testName, false)
	verify(t, ca, chain, testName)
	if got := chain[0].DNSNames; len(got) != 1 || got[0] != testName {
		t.Errorf("leaf DNSNames = %q, want [%q]", got, testName)
	}
	if n := ca.Orders(); n != 1 {
		t.Errorf("Orders() = %d, want 1", n)
	}
}

func TestObtainTLSALPN01ShortValidity(t *testing.T) {
	t.Parallel()
	const validity = 2 * time.Minute
	ca := acmetest.Start(t, acmetest.Options{Validity: validity})

	const name = "alpn.corral.test"
	chain := obtain(t, ca, name, true)
	verify(t, ca, chain, name)
	leaf := chain[0]
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < validity-2*time.Second || got > validity {
		t.Errorf("leaf lifetime = %v (NotBefore %v, NotAfter %v), want about %v", got, leaf.NotBefore, leaf.NotAfter, validity)
	}
	if n := ca.Orders(); n != 1 {
		t.Errorf("Orders() = %d, want 1", n)
	}
}

func TestAlwaysValid(t *testing.T) {
	t.Parallel()
	ca := acmetest.Start(t, acmetest.Options{AlwaysValid: true})
	// Serve the challenge on some other port, so nothing answers on the
	// port Pebble would validate against: issuance must still succeed.
	ca.HTTPPort = acmetest.FreePort(t)
	chain := obtain(t, ca, "other.corral.test", false)
	verify(t, ca, chain, "other.corral.test")
	if n := ca.Orders(); n != 1 {
		t.Errorf("Orders() = %d, want 1", n)
	}
}

func TestRootPEMIsPEM(t *testing.T) {
	t.Parallel()
	ca := acmetest.Start(t, acmetest.Options{})
	b, _ := pem.Decode(ca.RootPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("RootPEM = %q", ca.RootPEM)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsCA {
		t.Error("root is not a CA certificate")
	}
}
