package frontdoor

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
)

// Target is where a route sends a request.
type Target string

const (
	ToGateway Target = "gateway" // the OpenAI (/v1) and Ollama (/api) APIs, API key required
	ToChatUI  Target = "chat-ui" // the chat UI container
	ToFiles   Target = "files"   // the chat UI's object store, where browsers upload files
	ToHTTPS   Target = "https"   // a 308 to the same URL on HTTPS (ACME challenges are answered first)
)

// Route sends requests for Host (any host when empty) whose path starts
// with Prefix to Target. The first route that matches wins.
type Route struct {
	Listener string // "http" (--addr), "chat" (--chat-addr), "https" (--https-addr) or "redirect" (--http-addr)
	Host     string
	Prefix   string
	Target   Target
}

func (r Route) String() string {
	host := r.Host
	if host == "" {
		host = "*"
	}
	return fmt.Sprintf("%-8s %s%s -> %s", r.Listener, host, r.Prefix, r.Target)
}

// Table is the whole routing of the front door, built from the settings
// alone so that a reader (and `corral status`) can see it:
//
//   - without a domain, --addr serves the gateway at its root, and
//     --chat-addr the chat UI (plain HTTP is for a trial or a private
//     network: with a domain the chat UI is on HTTPS only);
//   - on each --domain, /v1/ goes to the gateway, the chat UI's bucket
//     path (filesPrefix, when it keeps files in an object store) to that
//     store, and everything else to the chat UI (or to the gateway too,
//     while there is no chat UI);
//   - on each --api-domain, the whole gateway at its root;
//   - on the HTTP port, everything goes to HTTPS.
//
// --addr keeps serving the gateway over plain HTTP with a domain too, so
// that a certificate that cannot be had yet leaves /v1 working.
func Table(addr, chatAddr string, domains, apiDomains []string, chatUI bool, filesPrefix string) []Route {
	var t []Route
	if len(domains)+len(apiDomains) > 0 {
		site := ToGateway
		if chatUI {
			site = ToChatUI
		}
		for _, d := range domains {
			t = append(t, Route{Listener: "https", Host: d, Prefix: "/v1/", Target: ToGateway})
			if chatUI && filesPrefix != "" {
				t = append(t, Route{Listener: "https", Host: d, Prefix: filesPrefix, Target: ToFiles})
			}
			t = append(t, Route{Listener: "https", Host: d, Prefix: "/", Target: site})
		}
		for _, d := range apiDomains {
			t = append(t, Route{Listener: "https", Host: d, Prefix: "/", Target: ToGateway})
		}
		for _, d := range slices.Concat(domains, apiDomains) {
			t = append(t, Route{Listener: "redirect", Host: d, Prefix: "/", Target: ToHTTPS})
		}
	}
	if addr != "" {
		t = append(t, Route{Listener: "http", Prefix: "/", Target: ToGateway})
	}
	if chatAddr != "" && chatUI && len(domains)+len(apiDomains) == 0 {
		t = append(t, Route{Listener: "chat", Prefix: "/", Target: ToChatUI})
	}
	return t
}

// router serves one listener's share of the table.
type router struct {
	routes   []Route
	handlers map[Target]http.Handler
}

func newRouter(listener string, table []Route, handlers map[Target]http.Handler) *router {
	rt := &router{handlers: handlers}
	for _, r := range table {
		if r.Listener == listener {
			rt.routes = append(rt.routes, r)
		}
	}
	return rt
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := hostOnly(r.Host)
	for _, route := range rt.routes {
		if (route.Host == "" || strings.EqualFold(route.Host, host)) && strings.HasPrefix(r.URL.Path, route.Prefix) {
			rt.handlers[route.Target].ServeHTTP(w, r)
			return
		}
	}
	// A name this corral does not serve: say so rather than guess.
	plainError(w, http.StatusMisdirectedRequest, "this server does not serve "+host)
}

// hostOnly is a Host field without its port, lower case.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// plainError answers with a short text: what the front door itself says,
// never naming an internal address.
func plainError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Del("Content-Length")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}
