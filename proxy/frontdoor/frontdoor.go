// Package frontdoor is what faces the internet: the listeners (plain
// HTTP, HTTPS with HTTP/2, and the HTTP port that answers ACME challenges
// and redirects to HTTPS), the routing table that sends each host and
// path to the gateway or the chat UI, the limits and deadlines that bound
// what a client can make corral hold, and the headers every response and
// every forwarded request carry. It knows its handlers only as
// http.Handlers.
package frontdoor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// TLS is what the front door needs of the certificate manager.
type TLS interface {
	TLSConfig() *tls.Config
	HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool
}

// Config says what to listen on and what to serve there.
type Config struct {
	Addr       string // plain HTTP, the gateway at its root; "" turns it off
	ChatAddr   string // plain HTTP, the chat UI, without a domain; "" turns it off
	HTTPSAddr  string // with a domain
	HTTPAddr   string // with a domain: ACME HTTP-01 and redirects to HTTPS
	Domains    []string
	APIDomains []string
	TLS        TLS // required with a domain
	Gateway    http.Handler
	ChatUI     http.Handler // nil: none (yet); the domain then serves the gateway
	// ChatFiles serves the chat UI's object store on its domains under
	// ChatFilesPrefix (its bucket's path): browsers upload there with
	// URLs the chat UI signs for the domain. nil: none.
	ChatFiles       http.Handler
	ChatFilesPrefix string
	Limits          Limits
	Trusted         []netip.Prefix // proxies whose forwarded fields are believed
	Logger          *slog.Logger
}

// Server is the front door, its listeners open.
type Server struct {
	cfg       Config
	table     []Route
	counter   *connCounter
	listeners map[string]net.Listener // by the table's listener names
	servers   map[string]*http.Server
	httpsPort string
}

// Listen opens every listener the settings ask for, or none: a port in
// use is reported by its flag before anything else starts.
func Listen(cfg Config) (*Server, error) {
	cfg.Limits.defaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	domain := len(cfg.Domains)+len(cfg.APIDomains) > 0
	if domain && cfg.TLS == nil {
		return nil, errors.New("frontdoor: a domain needs a certificate manager")
	}
	s := &Server{
		cfg:       cfg,
		table:     Table(cfg.Addr, cfg.ChatAddr, cfg.Domains, cfg.APIDomains, cfg.ChatUI != nil, filesPrefix(cfg)),
		counter:   newConnCounter(cfg.Limits),
		listeners: map[string]net.Listener{},
		servers:   map[string]*http.Server{},
	}
	type want struct{ name, flag, addr string }
	var wants []want
	if cfg.Addr != "" {
		wants = append(wants, want{"http", "--addr", cfg.Addr})
	}
	if slices.ContainsFunc(s.table, func(r Route) bool { return r.Listener == "chat" }) {
		wants = append(wants, want{"chat", "--chat-addr", cfg.ChatAddr})
	}
	if domain {
		wants = append(wants, want{"https", "--https-addr", cfg.HTTPSAddr}, want{"redirect", "--http-addr", cfg.HTTPAddr})
		_, s.httpsPort, _ = net.SplitHostPort(cfg.HTTPSAddr)
	}
	for _, w := range wants {
		l, err := net.Listen("tcp", w.addr)
		if err != nil {
			s.closeListeners()
			var se *net.OpError
			if errors.As(err, &se) {
				err = se.Err
			}
			return nil, fmt.Errorf("%s %s: %w: pick another with %s, or stop what uses it", w.flag, w.addr, err, w.flag)
		}
		s.listeners[w.name] = l
	}
	handlers := map[Target]http.Handler{ToGateway: cfg.Gateway, ToChatUI: cfg.ChatUI, ToFiles: cfg.ChatFiles, ToHTTPS: http.HandlerFunc(s.toHTTPS)}
	errLog := slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)
	for name := range s.listeners {
		var h http.Handler = newRouter(name, s.table, handlers)
		h = deadlines(cfg.Limits, h)
		if name != "redirect" {
			h = forwarded(cfg.Trusted, h)
		}
		h = securityHeaders(h)
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.Limits.ReadHeader, // also bounds a TLS handshake
			IdleTimeout:       cfg.Limits.Idle,
			MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
			ErrorLog:          errLog,
			HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 100},
		}
		if name == "https" {
			srv.TLSConfig = cfg.TLS.TLSConfig()
		}
		s.servers[name] = srv
	}
	return s, nil
}

func filesPrefix(cfg Config) string {
	if cfg.ChatFiles == nil {
		return ""
	}
	return cfg.ChatFilesPrefix
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		l.Close()
	}
}

// Routes is the routing table in use.
func (s *Server) Routes() []Route { return s.table }

// Addr is where a listener ("http", "chat", "https", "redirect")
// listens, or nil.
func (s *Server) Addr(name string) net.Addr {
	if l := s.listeners[name]; l != nil {
		return l.Addr()
	}
	return nil
}

// Guard puts another listener (the admin's) under the front door's
// connection caps, counted with its own: what a stranger can hold stays
// bounded on every port corral opens.
func (s *Server) Guard(l net.Listener, plain bool) net.Listener {
	return &limitListener{Listener: l, counter: s.counter, plain: plain}
}

// OpenConns is the number of client connections open now.
func (s *Server) OpenConns() int { return s.counter.open() }

// Serve serves until ctx ends, then shuts down gracefully, giving
// requests in flight grace to finish. It returns the first listener's
// failure.
func (s *Server) Serve(ctx context.Context, grace time.Duration) error {
	errc := make(chan error, len(s.servers))
	var wg sync.WaitGroup
	for name, srv := range s.servers {
		l := &limitListener{Listener: s.listeners[name], counter: s.counter, plain: name != "https"}
		wg.Go(func() {
			var err error
			if name == "https" {
				err = srv.ServeTLS(l, "", "")
			} else {
				err = srv.Serve(l)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("front door %s listener: %w", name, err)
			}
		})
		s.cfg.Logger.Info(listeningMsg[name], "addr", l.Addr().String())
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, srv := range s.servers {
		srv.Shutdown(sctx)
	}
	wg.Wait()
	return err
}

// listeningMsg is the log line for each listener: a plain address
// serves the gateway.
var listeningMsg = map[string]string{"http": "gateway listening", "chat": "chat UI listening", "https": "HTTPS listening", "redirect": "HTTP listening for ACME and redirects"}

// toHTTPS answers ACME's HTTP-01 challenges and sends everything else to
// the same URL on HTTPS; 308 keeps the method and body.
func (s *Server) toHTTPS(w http.ResponseWriter, r *http.Request) {
	if s.cfg.TLS.HandleHTTPChallenge(w, r) {
		return
	}
	host := hostOnly(r.Host)
	if s.httpsPort != "" && s.httpsPort != "443" {
		host = net.JoinHostPort(host, s.httpsPort)
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// Close closes the listeners of a front door that is not serving, as on
// a start-up that fails after Listen.
func (s *Server) Close() { s.closeListeners() }
