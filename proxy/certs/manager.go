package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap/zapcore"
)

// The public CAs, by the shortcuts --acme-ca takes.
const (
	LetsEncrypt        = certmagic.LetsEncryptProductionCA
	LetsEncryptStaging = certmagic.LetsEncryptStagingCA
)

// Config says which names to serve and where their certificates come
// from: an ACME CA, or files the owner brings.
type Config struct {
	Domains []string
	Email   string
	CA      string         // ACME directory URL
	CARoots *x509.CertPool // trusted for the CA's own HTTPS (a private CA); nil: the system's
	// CertFile and KeyFile: a certificate the owner brings; no ACME then.
	CertFile, KeyFile string
	// The ports and host where the front door answers challenges (HTTP-01
	// on the HTTP port, TLS-ALPN-01 on the HTTPS port).
	HTTPPort, TLSPort int
	ListenHost        string
	Storage           certmagic.Storage
	// RenewCheck is how often certificates are checked for renewal
	// (certmagic's default, 10 minutes, when zero).
	RenewCheck time.Duration
	// RenewalRatio is the share of a certificate's lifetime left when it
	// is renewed (certmagic's default, 1/3, when zero).
	RenewalRatio float64
	Logger       *slog.Logger
}

// Manager obtains, renews and serves the front door's certificates, and
// keeps what happened for Status.
type Manager struct {
	cfg    Config
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer // nil with a certificate from files
	log    *slog.Logger

	mu sync.Mutex
	st Status
}

// New prepares a manager; Start begins managing.
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{cfg: cfg, log: cfg.Logger}
	m.st = Status{Names: slices.Clone(cfg.Domains), CA: cfg.CA, State: StateStarting}
	if cfg.CertFile != "" {
		m.st.CA, m.st.Source = "", SourceFiles
	} else {
		m.st.Source = SourceACME
	}
	zl := zapToSlog(cfg.Logger, zapcore.InfoLevel, m.seen)
	var magic *certmagic.Config
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: cfg.RenewCheck,
		Logger:             zl,
	})
	magic = certmagic.New(m.cache, certmagic.Config{
		Storage: cfg.Storage,
		Logger:  zl,
		OnEvent: m.onEvent,
		// RenewalWindowRatio: 0 takes certmagic's default.
		RenewalWindowRatio: cfg.RenewalRatio,
		// Let's Encrypt ended OCSP; a private CA rarely runs it.
		OCSP: certmagic.OCSPConfig{DisableStapling: true},
	})
	m.magic = magic
	if cfg.CertFile == "" {
		m.issuer = certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
			CA:             cfg.CA,
			TestCA:         cfg.CA,
			Email:          cfg.Email,
			Agreed:         true,
			TrustedRoots:   cfg.CARoots,
			AltHTTPPort:    cfg.HTTPPort,
			AltTLSALPNPort: cfg.TLSPort,
			ListenHost:     cfg.ListenHost,
			Logger:         zl,
		})
		magic.Issuers = []certmagic.Issuer{m.issuer}
	}
	return m, nil
}

// Start loads what is stored and begins obtaining and renewing in the
// background: it does not wait for a CA, so the rest of corral serves
// meanwhile. A certificate from files is loaded now, and must cover
// every domain.
func (m *Manager) Start(ctx context.Context) error {
	if m.cfg.CertFile != "" {
		if _, err := m.magic.CacheUnmanagedCertificatePEMFile(ctx, m.cfg.CertFile, m.cfg.KeyFile, nil); err != nil {
			return fmt.Errorf("--tls-cert %s / --tls-key %s: %w", m.cfg.CertFile, m.cfg.KeyFile, err)
		}
		for _, d := range m.cfg.Domains {
			if len(m.cache.AllMatchingCertificates(d)) == 0 {
				return fmt.Errorf("--tls-cert %s does not cover %s: bring a certificate for it, or leave out --tls-cert to have one issued", m.cfg.CertFile, d)
			}
		}
		m.setState(StateValid, nil)
		return nil
	}
	// What the store holds is served at once; ManageAsync would load it
	// in the background.
	for _, d := range m.cfg.Domains {
		m.magic.CacheManagedCertificate(ctx, d)
	}
	if err := m.magic.ManageAsync(ctx, m.cfg.Domains); err != nil {
		return fmt.Errorf("certificates for %v: %w", m.cfg.Domains, err)
	}
	if m.haveAll() {
		m.setState(StateValid, nil)
	} else {
		m.setState(StateObtaining, nil)
	}
	return nil
}

// Stop ends renewals.
func (m *Manager) Stop() { m.cache.Stop() }

// TLSConfig is for the front door's HTTPS listeners: certificates by
// name, TLS-ALPN-01 challenges, HTTP/2.
func (m *Manager) TLSConfig() *tls.Config {
	tc := m.magic.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	tc.NextProtos = []string{"h2", "http/1.1", "acme-tls/1"}
	return tc
}

// HandleHTTPChallenge answers an HTTP-01 challenge and reports whether
// the request was one.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if m.issuer == nil {
		return false
	}
	return m.issuer.HandleHTTPChallenge(w, r)
}

// haveAll reports whether every domain has a certificate in the cache.
func (m *Manager) haveAll() bool {
	for _, d := range m.cfg.Domains {
		if len(m.cache.AllMatchingCertificates(d)) == 0 {
			return false
		}
	}
	return true
}

func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtaining":
		m.mu.Lock()
		if m.st.State != StateRetrying {
			m.st.State = StateObtaining
		}
		m.mu.Unlock()
	case "cert_obtained":
		m.mu.Lock()
		m.st.Obtained++
		m.mu.Unlock()
		m.setState(StateValid, nil)
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		m.setState(StateRetrying, err)
		m.log.Warn("certificate not obtained; retrying", "names", data["identifier"], "err", err, "hint", m.Status().Hint)
	}
	return nil
}

func (m *Manager) setState(s State, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.State = s
	if err != nil {
		m.st.LastError = err.Error()
		m.st.LastErrorAt = time.Now()
		m.st.Hint = hint(err, m.st.Challenge, m.cfg)
	}
}

// seen reads the ACME client's own "challenge failed" log entries for
// which challenge type the CA could not complete: its errors do not say.
func (m *Manager) seen(msg string, fields map[string]any) {
	if msg != "challenge failed" {
		return
	}
	if ct, ok := fields["challenge_type"].(string); ok {
		m.mu.Lock()
		m.st.Challenge = ct
		m.mu.Unlock()
	}
}

// hint turns an ACME failure into what the owner can do about it.
func hint(err error, challenge string, cfg Config) string {
	var p acme.Problem
	if !errors.As(err, &p) {
		return fmt.Sprintf("corral could not complete the exchange with the CA at %s: check --acme-ca and that this host can make outgoing HTTPS connections", cfg.CA)
	}
	kind := p.Type
	for _, sp := range p.Subproblems {
		kind = sp.Type
	}
	switch kind {
	case acme.ProblemTypeDNS:
		return "the domain does not resolve: create an A (or AAAA) record for it with this server's public address"
	case acme.ProblemTypeConnection, acme.ProblemTypeIncorrectResponse, acme.ProblemTypeUnauthorized, acme.ProblemTypeTLS:
		switch challenge {
		case "http-01":
			return fmt.Sprintf("the CA could not fetch the HTTP-01 challenge from port %d: open port 80 to the internet (firewall, cloud security group) and check that the domain's DNS points to this server", cfg.HTTPPort)
		case "tls-alpn-01":
			return fmt.Sprintf("the CA could not complete the TLS-ALPN-01 challenge on port %d: open port 443 to the internet and check that the domain's DNS points to this server", cfg.TLSPort)
		}
		return "the CA could not reach this server for the domain: check that its DNS points here and that ports 80 and 443 are open to the internet"
	case acme.ProblemTypeRateLimited:
		return "the CA's rate limit was hit: corral retries later; use --acme-ca staging while testing"
	case acme.ProblemTypeRejectedIdentifier, acme.ProblemTypeCAA:
		return "the CA refuses to issue for this name (a CAA record, or a name it does not serve)"
	case acme.ProblemTypeInvalidContact, acme.ProblemTypeUnsupportedContact:
		return "the CA refused the contact address: check --email"
	}
	return "see the error; corral retries with a growing delay"
}
