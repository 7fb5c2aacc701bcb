package frontdoor

import (
	"fmt"
	"net/http"
)

// ListenerHandlerForTest is the handler Listen serves on one listener
// ("http", "https" or "redirect"): its share of the routing table behind
// the deadlines, forwarded fields and security headers, as built by
// Listen itself. The listeners Listen opened are closed again, so a test
// can serve the handler over plain HTTP, as a domain's would not be.
func ListenerHandlerForTest(cfg Config, listener string) (http.Handler, error) {
	s, err := Listen(cfg)
	if err != nil {
		return nil, err
	}
	s.Close()
	srv := s.servers[listener]
	if srv == nil {
		return nil, fmt.Errorf("frontdoor: no %s listener with these settings", listener)
	}
	return srv.Handler, nil
}
