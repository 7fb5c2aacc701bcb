package ui

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// loginView is the sign-in page's data.
type loginView struct {
	Next      string
	TokenFile string
	Error     string
	Code      string // a sign-in link's code, for its button
}

func (a *admin) loginPage(c *gin.Context) {
	next := safeNext(c.Query("next"))
	if _, how := a.authenticate(c.Request); how == bySession {
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	a.pages.render(c, http.StatusOK, "login", view{Title: "Sign in", Data: loginView{Next: next, TokenFile: a.tokenFile}})
}

// login trades the admin token for a session cookie.
func (a *admin) login(c *gin.Context) {
	token := strings.TrimSpace(c.PostForm("token")) // pasted with a newline, often
	a.signInWith(c, safeNext(c.PostForm("next")), "admin token", "That is not this corral's admin token.", func() bool {
		return subtle.ConstantTimeCompare([]byte(token), *a.token.Load()) == 1
	})
}

// signInWith runs a sign-in by any credential: the form's own origin is
// checked as for any change (a sign-in forced from another site would put
// the browser into that site's choice of session), then the address's
// wrong guesses, then valid; refusal is what the page says when it fails.
func (a *admin) signInWith(c *gin.Context, next, what, refusal string, valid func() bool) {
	if err := a.cop.Check(c.Request); err != nil {
		c.String(http.StatusForbidden, "%s\n", errCrossSite.Error())
		return
	}
	addr := clientAddr(c.Request)
	if wait := a.guesses.wait(addr); wait > 0 {
		c.Header("Retry-After", fmt.Sprint(int(wait.Seconds()+0.999)))
		a.pages.render(c, http.StatusTooManyRequests, "login", view{Title: "Sign in", Data: loginView{
			Next: next, TokenFile: a.tokenFile, Error: fmt.Sprintf("Too many wrong tokens from your address: try again in %s.", wait.Round(time.Second)),
		}})
		return
	}
	if !valid() {
		a.guesses.failed(addr)
		a.log.Warn("admin sign-in refused: wrong "+what, "remote", c.Request.RemoteAddr)
		a.pages.render(c, http.StatusUnauthorized, "login", view{Title: "Sign in", Data: loginView{Next: next, TokenFile: a.tokenFile, Error: refusal}})
		return
	}
	a.guesses.succeeded(addr)
	if err := a.startSession(c); err != nil {
		a.log.Error("admin sign-in failed", "err", err)
		c.String(http.StatusInternalServerError, "could not start a session; corral's log has the reason\n")
		return
	}
	a.log.Info("admin signed in", "with", what, "remote", c.Request.RemoteAddr)
	c.Redirect(http.StatusSeeOther, next)
}

// startSession gives the browser a new session's cookie.
func (a *admin) startSession(c *gin.Context) error {
	id, s, err := a.sessions.create()
	if err != nil {
		return err
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     "/",
		Expires:  s.expires,
		MaxAge:   int(a.sessions.ttl.Seconds()),
		HttpOnly: true,
		Secure:   c.Request.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	return nil
}

// logout ends the session (the route checks its CSRF token first).
func (a *admin) logout(c *gin.Context) {
	if ck, err := c.Request.Cookie(sessionCookie); err == nil {
		a.sessions.remove(ck.Value)
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.Request.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	c.Redirect(http.StatusSeeOther, "/login")
}
