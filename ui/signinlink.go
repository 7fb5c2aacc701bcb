package ui

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// A sign-in link carries a one-time code instead of the admin token: it
// may sit in a terminal's scrollback or a shell history, so it works once
// and only for linkTTL.
const (
	linkTTL  = 15 * time.Minute
	maxLinks = 16 // outstanding codes; the oldest goes first
)

type signInLinks struct {
	now   func() time.Time
	mu    sync.Mutex
	codes map[string]time.Time // code → expiry
}

func newSignInLinks(now func() time.Time) *signInLinks {
	return &signInLinks{now: now, codes: map[string]time.Time{}}
}

func (l *signInLinks) mint() (string, error) {
	code, err := randomToken()
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked()
	for len(l.codes) >= maxLinks {
		var oldest string
		for c, exp := range l.codes {
			if oldest == "" || exp.Before(l.codes[oldest]) {
				oldest = c
			}
		}
		delete(l.codes, oldest)
	}
	l.codes[code] = l.now().Add(linkTTL)
	return code, nil
}

func (l *signInLinks) expireLocked() {
	now := l.now()
	for c, exp := range l.codes {
		if !now.Before(exp) {
			delete(l.codes, c)
		}
	}
}

// valid reports whether code would sign in; consume also uses it up.
func (l *signInLinks) check(code string, consume bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked()
	for c := range l.codes {
		if subtle.ConstantTimeCompare([]byte(c), []byte(code)) == 1 {
			if consume {
				delete(l.codes, c)
			}
			return true
		}
	}
	return false
}

// SignInLink makes a one-time sign-in link on base, the admin listener's
// URL.
func (x *Admin) SignInLink(base string) (string, error) {
	code, err := x.a.links.mint()
	if err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("admin URL %q: %w", base, err)
	}
	u.Path = "/login/link"
	u.RawQuery = url.Values{"code": {code}}.Encode()
	return u.String(), nil
}

const linkUsed = "This sign-in link was used already or has expired (links work once, for 15 minutes): run corral admin-link on the server for a new one, or sign in with the admin token."

// linkPage asks before the code is used: a link preview or a prefetch
// fetches the page but does not press the button.
func (a *admin) linkPage(c *gin.Context) {
	code := c.Query("code")
	v := loginView{Next: "/", TokenFile: a.tokenFile, Code: code}
	if !a.links.check(code, false) {
		v.Code, v.Error = "", linkUsed
	}
	a.pages.render(c, http.StatusOK, "login", view{Title: "Sign in", Data: v})
}

func (a *admin) linkSignIn(c *gin.Context) {
	code := c.PostForm("code")
	a.signInWith(c, "/", "sign-in link", linkUsed, func() bool { return a.links.check(code, true) })
}

var errNoLinks = errors.New("sign-in links need the admin listener (--admin-addr)")
