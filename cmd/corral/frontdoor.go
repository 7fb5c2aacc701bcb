package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"corral/proxy/certs"
	"corral/proxy/frontdoor"
)

// doorConfig is the front door's part of serve's flags.
type doorConfig struct {
	Domains        string
	APIDomains     string
	Email          string
	HTTPSAddr      string
	HTTPAddr       string
	ACMECA         string
	ACMECARoot     string
	TLSCert        string
	TLSKey         string
	MaxBody        string
	TrustedProxies string
	MaxConns       int
	MaxConnsPerIP  int
	StallTimeout   time.Duration
}

func (d *doorConfig) flags(fs *flagSet) {
	def := frontdoor.DefaultLimits()
	fs.StringVar(&d.Domains, "domain", "", "serve HTTPS for these names (comma-separated), with certificates obtained and renewed automatically: / is the chat UI, /v1 the gateway")
	fs.StringVar(&d.APIDomains, "api-domain", "", "serve the whole gateway (OpenAI and Ollama APIs) at the root of these names over HTTPS")
	fs.StringVar(&d.Email, "email", "", "contact address for the ACME account (required with Let's Encrypt)")
	fs.StringVar(&d.HTTPSAddr, "https-addr", ":443", "HTTPS listener, with a domain (also answers TLS-ALPN-01 challenges)")
	fs.StringVar(&d.HTTPAddr, "http-addr", ":80", "HTTP listener, with a domain: ACME HTTP-01 challenges, everything else redirected to HTTPS")
	fs.StringVar(&d.ACMECA, "acme-ca", "letsencrypt", "ACME CA: letsencrypt, staging (Let's Encrypt's staging CA, for trials), or a directory URL")
	fs.StringVar(&d.ACMECARoot, "acme-ca-root", "", "PEM file of a root to trust for a private ACME CA")
	fs.StringVar(&d.TLSCert, "tls-cert", "", "bring your own certificate (PEM, with its chain) instead of ACME; needs --tls-key")
	fs.StringVar(&d.TLSKey, "tls-key", "", "the private key (PEM) of --tls-cert")
	fs.StringVar(&d.MaxBody, "max-body", "32MiB", "largest request body, such as 32MiB (images come base64)")
	fs.StringVar(&d.TrustedProxies, "trusted-proxies", "", "addresses or prefixes (comma-separated) of proxies in front of corral whose X-Forwarded-* fields are believed")
	fs.IntVar(&d.MaxConns, "max-conns", def.MaxConns, "most client connections open at once (503 beyond)")
	fs.IntVar(&d.MaxConnsPerIP, "max-conns-per-ip", def.MaxConnsPerIP, "most client connections open at once from one address (429 beyond)")
	fs.DurationVar(&d.StallTimeout, "stall-timeout", def.WriteIdle, "cut a client that takes nothing of its answer this long (its instance's request is cancelled)")
}

// hasDomain reports whether HTTPS is on.
func (d doorConfig) hasDomain() bool { return d.Domains != "" || d.APIDomains != "" }

// validate returns one error per problem.
func (d doorConfig) validate() []error {
	var errs []error
	domains, err := parseDomains("--domain", d.Domains)
	if err != nil {
		errs = append(errs, err)
	}
	apiDomains, err := parseDomains("--api-domain", d.APIDomains)
	if err != nil {
		errs = append(errs, err)
	}
	for _, a := range apiDomains {
		for _, b := range domains {
			if a == b {
				errs = append(errs, fmt.Errorf("--api-domain %s is also a --domain: give each name one role", a))
			}
		}
	}
	if _, err := parseSize(d.MaxBody); err != nil {
		errs = append(errs, fmt.Errorf("--max-body %q: %v", d.MaxBody, err))
	}
	if _, err := frontdoor.ParseTrusted(strings.Split(d.TrustedProxies, ",")); err != nil {
		errs = append(errs, err)
	}
	if d.MaxConns < 1 || d.MaxConnsPerIP < 1 {
		errs = append(errs, fmt.Errorf("--max-conns %d, --max-conns-per-ip %d: both must be at least 1", d.MaxConns, d.MaxConnsPerIP))
	}
	if d.StallTimeout < time.Second {
		errs = append(errs, fmt.Errorf("--stall-timeout %s: use 1s or more", d.StallTimeout))
	}
	if (d.TLSCert == "") != (d.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together: give both, or neither to have certificates issued"))
	}
	if !d.hasDomain() {
		if d.TLSCert != "" {
			errs = append(errs, errors.New("--tls-cert needs --domain: the names it serves"))
		}
		return errs
	}
	for _, a := range []struct{ flag, addr string }{{"--https-addr", d.HTTPSAddr}, {"--http-addr", d.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port, such as %s", a.flag, a.addr, map[string]string{"--https-addr": ":443", "--http-addr": ":80"}[a.flag]))
		}
	}
	if d.TLSCert != "" || d.TLSKey != "" {
		if d.TLSCert != "" && d.TLSKey != "" {
			for _, f := range []struct{ flag, path string }{{"--tls-cert", d.TLSCert}, {"--tls-key", d.TLSKey}} {
				if _, err := os.Stat(f.path); err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", f.flag, f.path, errors.Unwrap(err)))
				}
			}
		}
		return errs
	}
	ca, err := caURL(d.ACMECA)
	if err != nil {
		errs = append(errs, err)
	}
	if (ca == certs.LetsEncrypt || ca == certs.LetsEncryptStaging) && d.Email == "" {
		errs = append(errs, errors.New("--email is required with Let's Encrypt: an address for the ACME account (such as you@example.com)"))
	}
	if d.Email != "" && !emailRE.MatchString(d.Email) {
		errs = append(errs, fmt.Errorf("--email %q: want an address such as you@example.com", d.Email))
	}
	if d.ACMECARoot != "" {
		if _, err := loadRoots(d.ACMECARoot); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

var (
	// A DNS name: letters, digits and hyphens in labels of up to 63,
	// at least two labels, no label starting or ending with a hyphen.
	labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// parseDomains reads a comma-separated list of host names.
func parseDomains(flag, list string) ([]string, error) {
	var out []string
	for raw := range strings.SplitSeq(list, ",") {
		d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(raw), "."))
		if d == "" {
			continue
		}
		if _, err := netip.ParseAddr(strings.Trim(d, "[]")); err == nil {
			return nil, fmt.Errorf("%s %s: an IP address cannot have a certificate from an ACME CA: give a DNS name that points to this server, such as chat.example.com", flag, raw)
		}
		if strings.HasPrefix(d, "*.") {
			return nil, fmt.Errorf("%s %s: wildcard names need the DNS challenge, which corral does not do: list each name", flag, raw)
		}
		labels := strings.Split(d, ".")
		ok := len(labels) >= 2 && len(d) <= 253
		for _, l := range labels {
			ok = ok && labelRE.MatchString(l)
		}
		if ok {
			_, err := strconv.Atoi(labels[len(labels)-1])
			ok = err != nil // a numeric top-level label is an address, not a name
		}
		if !ok {
			return nil, fmt.Errorf("%s %q: not a valid DNS name: want a name such as chat.example.com", flag, raw)
		}
		out = append(out, d)
	}
	return out, nil
}

// caURL resolves --acme-ca's shortcuts.
func caURL(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", "letsencrypt", "le":
		return certs.LetsEncrypt, nil
	case "staging", "letsencrypt-staging":
		return certs.LetsEncryptStaging, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("--acme-ca %q: use letsencrypt, staging, or an ACME directory URL such as https://ca.example.com/acme/directory", s)
	}
	return s, nil
}

// loadRoots reads a PEM file of root certificates.
func loadRoots(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca-root %s: %w", path, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("--acme-ca-root %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// parseSize reads a byte size such as 32MiB, 512KiB, 1GiB or 1048576.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a size such as 32MiB, 512KiB or 1GiB")
	}
	if n > (1<<40)/mult {
		return 0, errors.New("larger than 1 TiB")
	}
	return n * mult, nil
}

// frontdoorConfig is the front door's configuration from the flags
// (validated), serving the gateway plainly on addr; the caller adds the
// handlers, the certificates and the logger.
func (d doorConfig) frontdoorConfig(addr string) frontdoor.Config {
	l := frontdoor.DefaultLimits()
	l.MaxBody, _ = parseSize(d.MaxBody)
	l.MaxConns, l.MaxConnsPerIP = d.MaxConns, d.MaxConnsPerIP
	l.WriteIdle = d.StallTimeout
	c := frontdoor.Config{Addr: addr, HTTPSAddr: d.HTTPSAddr, HTTPAddr: d.HTTPAddr, Limits: l}
	c.Domains, _ = parseDomains("", d.Domains)
	c.APIDomains, _ = parseDomains("", d.APIDomains)
	c.Trusted, _ = frontdoor.ParseTrusted(strings.Split(d.TrustedProxies, ","))
	return c
}

// certConfig is the certificate manager's configuration (validated) for
// the front door's names and ports.
func (d doorConfig) certConfig(door frontdoor.Config) certs.Config {
	c := certs.Config{Domains: slices.Concat(door.Domains, door.APIDomains), Email: d.Email, CertFile: d.TLSCert, KeyFile: d.TLSKey,
		HTTPPort: portOf(d.HTTPAddr, 80), TLSPort: portOf(d.HTTPSAddr, 443)}
	c.ListenHost, _, _ = net.SplitHostPort(d.HTTPAddr)
	c.CA, _ = caURL(d.ACMECA)
	if d.ACMECARoot != "" {
		c.CARoots, _ = loadRoots(d.ACMECARoot)
	}
	return c
}

// portOf is the port of a listen address, or fallback when it has none.
func portOf(addr string, fallback int) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return fallback
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return fallback
	}
	return n
}
