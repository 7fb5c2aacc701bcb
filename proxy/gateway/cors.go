package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// CORS says which web pages may call the gateway from a browser; the
// gateway asks it for every request that carries an Origin. nil in the
// Config: none may (CORS off).
type CORS interface {
	// AllowOrigin reports whether a page from origin may call the
	// gateway; anyOrigin when every origin may ("*").
	AllowOrigin(origin string) (ok, anyOrigin bool)
}

// Origins is a parsed list of allowed origins; nil or empty allows none.
// It never changes once made: an admin's new list is a new Origins.
type Origins struct {
	any  bool
	set  map[string]bool
	list []string
}

var _ CORS = (*Origins)(nil)

// maxOrigins bounds the list an admin may set.
const maxOrigins = 100

// ParseOrigins reads a list of origins, each "scheme://host[:port]"
// (http or https, no path), or "*" for any; blank entries are skipped.
// Every bad entry is reported, one line each.
func ParseOrigins(list []string) (*Origins, error) {
	o := &Origins{set: map[string]bool{}}
	var errs []error
	for _, raw := range list {
		v := strings.TrimSpace(raw)
		switch {
		case v == "":
			continue
		case v == "*":
			o.any = true
			continue
		}
		n, err := normalizeOrigin(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !o.set[n] {
			o.set[n] = true
			o.list = append(o.list, n)
		}
	}
	if len(o.list) > maxOrigins {
		errs = append(errs, fmt.Errorf("%d CORS origins: at most %d (or * for any)", len(o.list), maxOrigins))
	}
	if o.any {
		o.list, o.set = []string{"*"}, nil
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// normalizeOrigin spells an origin as browsers send it: lower case, no
// default port, no trailing slash.
func normalizeOrigin(v string) (string, error) {
	bad := fmt.Errorf("CORS origin %q: want scheme://host[:port], such as https://app.example.com, or * for any", v)
	if len(v) > 300 {
		return "", bad
	}
	u, err := url.Parse(strings.TrimSuffix(v, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.ContainsAny(u.Host, " *") {
		return "", bad
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		return u.Scheme + "://" + host, nil
	}
	return u.Scheme + "://" + host + ":" + port, nil
}

// List is the origins as set, normalised; ["*"] for any, empty for none.
func (o *Origins) List() []string {
	if o == nil {
		return []string{}
	}
	return append([]string{}, o.list...)
}

// AllowOrigin implements CORS.
func (o *Origins) AllowOrigin(origin string) (ok, anyOrigin bool) {
	switch {
	case o == nil:
		return false, false
	case o.any:
		return true, true
	}
	return o.set[strings.ToLower(origin)], false
}

// corsMaxAge is how long a browser may keep a preflight's answer (s).
const corsMaxAge = "600"

// cors applies the CORS policy to a request with an Origin, and answers
// a preflight itself (handled): before any key is asked for, since
// browsers send none with it. An allowed origin gets the
// Access-Control-* fields; a refused one none, and its preflight a 403.
// A request itself is not refused for its origin: a key travels in a
// header that makes a browser ask with a preflight first, which a refused
// origin fails, and without a key a request gets nowhere.
func (g *Gateway) cors(w http.ResponseWriter, r *http.Request) (handled bool) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	var ok, anyOrigin bool
	if g.cfg.CORS != nil {
		ok, anyOrigin = g.cfg.CORS.AllowOrigin(origin)
	}
	h := w.Header()
	if !anyOrigin {
		// The answer depends on the origin: caches must keep them apart.
		h.Add("Vary", "Origin")
	}
	if !ok {
		if preflight {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintln(w, "this origin may not call this API from a browser: ask the admin to allow it (corral serve --cors-origins)")
			return true
		}
		return false
	}
	if anyOrigin {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if !preflight {
		h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	// Authorization is never covered by a "*" here: the fields asked for
	// are named back, as long as they are a plain list of names.
	if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" && fieldList(asked) {
		h.Set("Access-Control-Allow-Headers", asked)
	}
	h.Set("Access-Control-Max-Age", corsMaxAge)
	h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// fieldList reports whether s is a short comma-separated list of header
// field names.
func fieldList(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == ',', c == ' ':
		default:
			return false
		}
	}
	return true
}
