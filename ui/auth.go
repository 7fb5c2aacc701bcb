package ui

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// sessionCookie names the browser's session. It is the only credential a
// browser holds; the admin token itself never goes into a cookie.
const sessionCookie = "corral_session"

// ctxSession is where the auth middleware leaves the session for pages.
const ctxSession = "corral.session"

// bearerOK reports whether r carries the admin token as a bearer token.
func bearerOK(r *http.Request, want []byte) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), want) == 1
}

// tokenRequired is the answer scripts and the CLI have always had.
func tokenRequired(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="corral admin"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write([]byte(`{"error":"admin token required: send Authorization: Bearer <token> (the token is in the data dir's admin-token file)"}` + "\n"))
}

// how says how a request proved itself.
type how int

const (
	anonymous how = iota
	byBearer
	bySession
	throttled // too many wrong tokens from this address lately
)

// authenticate accepts the admin token as a bearer token or a live
// session cookie. An Authorization header, when sent, decides alone: a
// script with a wrong token should hear so, even from a browser that
// happens to be signed in.
func (a *admin) authenticate(r *http.Request) (session, how) {
	if r.Header.Get("Authorization") != "" {
		addr := clientAddr(r)
		if a.guesses.wait(addr) > 0 {
			return session{}, throttled
		}
		if bearerOK(r, *a.token.Load()) {
			return session{}, byBearer
		}
		a.guesses.failed(addr)
		a.log.Warn("admin API refused: wrong token", "remote", r.RemoteAddr)
		return session{}, anonymous
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, anonymous
	}
	if s, ok := a.sessions.get(c.Value); ok {
		return s, bySession
	}
	return session{}, anonymous
}

// requireAPI guards the JSON API and /metrics: no credentials is the
// JSON 401 of old, a session's change without its CSRF proof a JSON 403.
func (a *admin) requireAPI(c *gin.Context) {
	s, how := a.authenticate(c.Request)
	switch how {
	case throttled:
		wait := a.guesses.wait(clientAddr(c.Request))
		c.Header("Retry-After", fmt.Sprint(int(wait.Seconds()+0.999)))
		c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"error": fmt.Sprintf("too many wrong admin tokens from your address: try again in %s", wait.Round(time.Second))})
		return
	case anonymous:
		tokenRequired(c.Writer)
		c.Abort()
		return
	case bySession:
		if err := checkCSRF(a.cop, c.Request, s); err != nil {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": err.Error()})
			return
		}
	}
	c.Next()
}

// requirePage guards the pages: a browser that is not signed in is sent
// to the sign-in page, and comes back where it was going.
func (a *admin) requirePage(c *gin.Context) {
	s, how := a.authenticate(c.Request)
	switch how {
	case anonymous, throttled:
		next := "/"
		if c.Request.Method == http.MethodGet {
			next = c.Request.URL.RequestURI()
		}
		c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(next))
		c.Abort()
		return
	case bySession:
		if err := checkCSRF(a.cop, c.Request, s); err != nil {
			c.String(http.StatusForbidden, "%s\n", err.Error())
			c.Abort()
			return
		}
	}
	c.Set(ctxSession, s)
	c.Next()
}

// pageView starts a view for a signed-in page.
func pageView(c *gin.Context, title, active string, data any) view {
	s, _ := c.Get(ctxSession)
	sess, _ := s.(session)
	return view{Title: title, Active: active, SignedIn: true, CSRF: sess.csrf, Data: data}
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, `/\`) || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}
