package frontdoor

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// NewWebProxy passes requests to a web app (the chat UI container) as a
// reverse proxy should for a chat page: responses stream as they come
// (no buffering, so its own streamed answers are not held back),
// websocket upgrades pass through, the public Host and the forwarded
// fields the front door set are passed on, and an error names no
// internal address.
func NewWebProxy(target *url.URL, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			// ReverseProxy drops the forwarded fields before Rewrite; the
			// front door's are vetted (see forwarded), so they go on.
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip"} {
				if v := pr.In.Header.Values(k); len(v) > 0 {
					pr.Out.Header[k] = v
				}
			}
			pr.Out.Header.Del("Expect")
		},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 2 * time.Minute,
			DisableCompression:    true,
		},
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			// The front door's security headers win over the app's copies.
			for _, k := range []string{"Strict-Transport-Security", "X-Content-Type-Options", "Referrer-Policy"} {
				resp.Header.Del(k)
			}
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				pageHeaders(resp.Header)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				plainError(w, http.StatusRequestEntityTooLarge, "the upload is too large for this server (corral's --max-body)")
				return
			}
			if r.Context().Err() != nil {
				return // the client left
			}
			log.Warn("chat UI unreachable", "path", r.URL.Path, "err", err)
			plainError(w, http.StatusBadGateway, "the chat UI is not answering: corral status says why")
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
