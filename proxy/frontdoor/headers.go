package frontdoor

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Security headers on every response: HSTS on HTTPS, no MIME sniffing, a
// referrer that leaves no path behind; pages (the chat UI) may not be
// framed by other sites.
const (
	hsts           = "max-age=31536000"
	referrerPolicy = "strict-origin-when-cross-origin"
)

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", hsts)
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", referrerPolicy)
		next.ServeHTTP(w, r)
	})
}

// pageHeaders marks what a browser renders as a page.
func pageHeaders(h http.Header) {
	if h.Get("X-Frame-Options") == "" {
		h.Set("X-Frame-Options", "SAMEORIGIN")
	}
}

// ParseTrusted reads --trusted-proxies: addresses or CIDR prefixes of
// proxies in front of corral whose forwarded fields are believed.
func ParseTrusted(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies %q: want an address or a prefix such as 10.0.0.0/8", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func trusted(list []netip.Prefix, ip netip.Addr) bool {
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwarded sets X-Forwarded-For, -Proto, -Host and X-Real-IP on the
// request as corral saw it. A client's own values are replaced, since
// anyone can send them, unless the peer is a trusted proxy: then its
// chain is kept and extended, and the real address is the nearest one
// that is not a trusted proxy.
func forwarded(trust []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header
		peer, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			peer = r.RemoteAddr
		}
		peerIP, _ := netip.ParseAddr(peer)
		peerIP = peerIP.Unmap()
		proto := "http"
		if r.TLS != nil {
			proto = "https"
		}
		if len(trust) > 0 && trusted(trust, peerIP) {
			chain := splitList(h.Values("X-Forwarded-For"))
			chain = append(chain, peerIP.String())
			real := chain[0]
			for i := len(chain) - 1; i >= 0; i-- {
				ip, err := netip.ParseAddr(chain[i])
				if err != nil || !trusted(trust, ip.Unmap()) {
					real = chain[i]
					break
				}
			}
			h.Set("X-Forwarded-For", strings.Join(chain, ", "))
			h.Set("X-Real-Ip", real)
			if h.Get("X-Forwarded-Proto") == "" {
				h.Set("X-Forwarded-Proto", proto)
			}
			if h.Get("X-Forwarded-Host") == "" {
				h.Set("X-Forwarded-Host", r.Host)
			}
		} else {
			h.Set("X-Forwarded-For", peerIP.String())
			h.Set("X-Real-Ip", peerIP.String())
			h.Set("X-Forwarded-Proto", proto)
			h.Set("X-Forwarded-Host", r.Host)
		}
		h.Del("Forwarded") // RFC 7239's form is not vetted: drop it rather than pass a forgery
		next.ServeHTTP(w, r)
	})
}

func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}
