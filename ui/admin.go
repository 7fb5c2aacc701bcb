package ui

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"corral/assets"
)

// AdminConfig sets up the admin listener's handler.
type AdminConfig struct {
	Token      string           // the admin token: bearer for scripts, and what a person signs in with
	TokenFile  string           // where the token is kept, shown on the sign-in page; empty when it was given as a flag
	SessionTTL time.Duration    // how long a sign-in lasts; default 12h
	Metrics    http.Handler     // served at /metrics behind the same auth; nil: none
	Logger     *slog.Logger     // default slog.Default()
	Now        func() time.Time // default time.Now; tests move it
}

// DefaultSessionTTL is a working day and then some: long enough not to
// interrupt, short enough that a forgotten browser does not stay in.
const DefaultSessionTTL = 12 * time.Hour

// admin serves the pages and guards them and the API.
type admin struct {
	Deps
	token     atomic.Pointer[[]byte] // RotateToken replaces it
	tokenFile string
	sessions  *sessions
	guesses   *guesses
	links     *signInLinks
	cop       *http.CrossOriginProtection
	pages     *pages
	log       *slog.Logger
	now       func() time.Time
}

// NewAdmin builds the handler of the admin listener: the admin pages, the
// JSON API of NewAPI, and cfg.Metrics. Scripts and the CLI send the token
// as a bearer token, as before; browsers sign in once with it and then
// hold a session cookie.
func NewAdmin(cfg AdminConfig, d Deps) (*Admin, error) {
	if cfg.Token == "" {
		return nil, errors.New("ui: the admin token is empty")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p, err := loadPages(assets.FS, cfg.Logger)
	if err != nil {
		return nil, err
	}
	a := &admin{
		Deps:      d,
		tokenFile: cfg.TokenFile,
		sessions:  newSessions(cfg.SessionTTL, cfg.Now),
		guesses:   newGuesses(cfg.Now),
		links:     newSignInLinks(cfg.Now),
		cop:       http.NewCrossOriginProtection(),
		pages:     p,
		log:       cfg.Logger,
		now:       cfg.Now,
	}
	token := []byte(cfg.Token)
	a.token.Store(&token)
	d.AdminToken = a

	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/static/:name", p.serveStatic)
	r.GET("/login", pageHeaders, a.loginPage)
	r.POST("/login", pageHeaders, a.login)
	r.GET("/login/link", pageHeaders, a.linkPage)
	r.POST("/login/link", pageHeaders, a.linkSignIn)

	pg := r.Group("/", pageHeaders, a.requirePage)
	pg.GET("/", a.overviewPage)
	pg.GET("/live/overview", a.livePart("overview", "overview_body", func(c *gin.Context) any {
		return pageView(c, "Overview", "overview", a.overview())
	}))
	pg.GET("/settings", a.settingsPage)
	if d.Filter != nil {
		pg.POST("/settings/filter", a.listForm("phrases", "content filter", d.Filter.SetPhrases))
	}
	if d.Door != nil {
		pg.POST("/settings/door", a.doorForm)
		pg.POST("/settings/restart", a.restartForm)
	}
	if d.CORS != nil {
		pg.POST("/settings/cors", a.listForm("origins", "list of browser origins", d.CORS.SetOrigins))
	}
	pg.GET("/instances", a.instancesPage)
	pg.GET("/live/instances", a.livePart("instances", "instances_body", func(c *gin.Context) any {
		return pageView(c, "Instances", "instances", a.instancesView())
	}))
	pg.GET("/instances/:name", a.instancePage)
	pg.GET("/instances/:name/logs/live", a.logsLive)
	pg.GET("/instances/:name/confirm/:action", a.confirmInstanceAction)
	pg.POST("/instances/:name/:action", a.instanceActionForm)
	if d.Settings != nil {
		pg.POST("/instances/settings", a.instanceSettingsForm)
	}
	pg.POST("/logout", a.logout)
	if d.Keys != nil {
		pg.GET("/keys", a.keysPage)
		pg.POST("/keys", a.createKeyForm)
		pg.GET("/keys/:name/revoke", a.revokeKeyConfirm)
		pg.POST("/keys/:name/revoke", a.revokeKeyForm)
		pg.GET("/keys/:name/limits", a.limitsEdit)
		pg.POST("/keys/:name/limits", a.limitsForm)
	}
	if d.Usage != nil {
		pg.GET("/usage", a.usagePage)
		pg.GET("/usage.csv", a.usageCSV)
	}
	if d.Models != nil {
		pg.GET("/models", a.modelsPage)
		pg.GET("/models/table", a.modelsTable)
		pg.POST("/models/pull", a.pullForm)
		pg.GET("/models/delete", a.deleteConfirm)
		pg.POST("/models/delete", a.deleteForm)
		pg.POST("/models/place", a.placeForm)
	}

	api := gin.WrapH(NewAPI(d))
	r.Any("/api/*path", a.requireAPI, api)
	if cfg.Metrics != nil {
		r.GET("/metrics", a.requireAPI, gin.WrapH(cfg.Metrics))
	}
	// Anything else: a browser gets a page that says there is none (after
	// signing in); scripts what the admin listener always answered, 401
	// first.
	r.NoRoute(func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, "/api/") || !strings.Contains(c.GetHeader("Accept"), "text/html") {
			a.requireAPI(c)
			if !c.IsAborted() {
				api(c)
			}
			return
		}
		pageHeaders(c)
		a.requirePage(c)
		if !c.IsAborted() {
			a.pages.render(c, http.StatusNotFound, "notfound", pageView(c, "No such page", "", c.Request.URL.Path))
		}
	})
	return &Admin{Handler: r, a: a}, nil
}

// Admin is the admin listener's handler.
type Admin struct {
	http.Handler
	a *admin
}

// RotateToken replaces the admin token (and its file) with a new one and
// ends every session: whoever held the old one is out.
func (x *Admin) RotateToken() (string, error) { return x.a.RotateToken() }

// RotateToken is Admin's.
func (a *admin) RotateToken() (string, error) {
	if a.tokenFile == "" {
		return "", errors.New("the admin token was given with --admin-token (or CORRAL_ADMIN_TOKEN): change it there and restart corral")
	}
	token, err := randomToken()
	if err != nil {
		return "", err
	}
	tmp := a.tokenFile + ".new"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	if err := os.Rename(tmp, a.tokenFile); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	b := []byte(token)
	a.token.Store(&b)
	n := a.sessions.clear()
	a.log.Info("admin token rotated; every session ended", "sessions", n)
	return token, nil
}
