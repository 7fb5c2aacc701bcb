package ui

import (
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
)

// A cookie rides along on every request the browser makes, wherever the
// page that caused it came from; so a change made with a session must
// show it came from our own page: same origin (Sec-Fetch-Site or Origin,
// via net/http's check) and the session's token, which only our pages
// know.
var (
	errCrossSite   = errors.New("cross-site request refused: changes are taken only from this admin page's own origin")
	errCSRFMissing = errors.New("CSRF token missing: send the page's csrf-token as the X-CSRF-Token header (forms: the csrf_token field); reload the page if it is old")
	errCSRFWrong   = errors.New("CSRF token does not match this session: reload the page and try again")
)

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF lets a state-changing request made with session s through
// only from our own pages.
func checkCSRF(cop *http.CrossOriginProtection, r *http.Request, s session) error {
	if safeMethod(r.Method) {
		return nil
	}
	if err := cop.Check(r); err != nil {
		return errCrossSite
	}
	got := r.Header.Get("X-CSRF-Token")
	// Only a urlencoded form is read here: an upload's body is the
	// file, not a form.
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); got == "" && ct == "application/x-www-form-urlencoded" {
		got = r.PostFormValue("csrf_token")
	}
	if got == "" {
		return errCSRFMissing
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
		return errCSRFWrong
	}
	return nil
}
