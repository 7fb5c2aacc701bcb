package frontdoor

import (
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"corral/proxy/redact"
)

// AppState is the chat UI container as the front door needs it at one
// moment: where it answers, and whether it is up, or why not.
type AppState struct {
	URL     string // base URL on the private network; empty until it has one
	Healthy bool
	Phase   string // pending, pulling, starting, unhealthy, failed, ...
	Reason  string
}

// appProxy serves the chat UI at whatever address it has now (a
// recreated container has a new one), and while it is not up, a page
// that says what is happening and looks again by itself.
type appProxy struct {
	state func() AppState
	log   *slog.Logger

	mu     sync.Mutex
	target string
	proxy  http.Handler
}

// NewAppProxy serves the app that state describes, as NewWebProxy does.
func NewAppProxy(state func() AppState, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return &appProxy{state: state, log: log}
}

func (a *appProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := a.state()
	if !st.Healthy || st.URL == "" {
		waitingPage(w, r, st)
		return
	}
	a.handler(st.URL).ServeHTTP(w, r)
}

// handler is the reverse proxy for target, made anew when the app moved.
func (a *appProxy) handler(target string) http.Handler {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.target != target || a.proxy == nil {
		u, err := url.Parse(target)
		if err != nil {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				plainError(w, http.StatusBadGateway, "the chat UI has no usable address: corral status says why")
			})
		}
		if old, ok := a.proxy.(*httputil.ReverseProxy); ok {
			if t, ok := old.Transport.(*http.Transport); ok {
				t.CloseIdleConnections()
			}
		}
		a.target, a.proxy = target, NewWebProxy(u, a.log)
	}
	return a.proxy
}

var waitingTmpl = template.Must(template.New("waiting").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5"><title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:#f6f7f9;color:#1d2330}
main{max-width:34rem;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px #0002}h1{font-size:1.3rem;margin:0 0 .5rem}
p{margin:.5rem 0}.why{color:#555;font-size:.9rem;word-break:break-word}.failed h1{color:#b42318}</style></head>
<body><main class="{{.Phase}}"><h1>{{.Title}}</h1><p>{{.Text}}</p>{{if .Reason}}<p class="why">{{.Reason}}</p>{{end}}
<p class="why">This page looks again every 5 seconds. The API at /v1 works meanwhile.</p></main></body></html>
`))

// waitingPage answers for a chat UI that is not up: a 503 that browsers
// show as a page that refreshes itself, and other clients read as text.
func waitingPage(w http.ResponseWriter, r *http.Request, st AppState) {
	title, text := "The chat is starting", "corral is starting the chat UI; it will be here in a moment."
	switch st.Phase {
	case "pulling":
		title, text = "The chat is being installed", "corral is downloading the chat UI's image."
	case "failed":
		title, text = "The chat is not available", "The chat UI could not start; the server's owner can see why with corral status."
	case "unhealthy":
		title, text = "The chat is restarting", "The chat UI stopped answering; corral is bringing it back."
	}
	// The page is public: the reason goes without internal addresses.
	st.Reason = redact.Addresses(st.Reason)
	w.Header().Set("Retry-After", "5")
	w.Header().Set("Cache-Control", "no-store")
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		plainError(w, http.StatusServiceUnavailable, fmt.Sprintf("%s: %s (%s)", title, st.Phase, st.Reason))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageHeaders(w.Header())
	w.WriteHeader(http.StatusServiceUnavailable)
	waitingTmpl.Execute(w, struct{ Title, Text, Phase, Reason string }{title, text, st.Phase, st.Reason})
}
