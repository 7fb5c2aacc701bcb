package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// view is what every page's template gets.
type view struct {
	Title    string
	Active   string // the nav section shown as current
	SignedIn bool
	CSRF     string // empty when signed in with a bearer token: no forms then
	Data     any
}

// staticFile is one embedded file, served under a URL that names its
// content, so browsers may keep it for a year.
type staticFile struct {
	body  []byte
	ctype string
	hash  string
}

// pages holds the parsed templates, one set per page (each page defines
// its own "content"), and the static files.
type pages struct {
	views  map[string]*template.Template
	static map[string]staticFile
	log    *slog.Logger
}

// loadPages parses every page's templates once. The handlers render
// pageNames; each has its file under templates/pages, and loading fails
// when the two disagree, so a page without its template is a start-up
// error rather than a 500 later.
func loadPages(fsys fs.FS, log *slog.Logger) (*pages, error) {
	pageNames := []string{"login", "models", "keys", "notfound", "overview", "usage", "instances", "instance", "settings"}
	p := &pages{views: map[string]*template.Template{}, static: map[string]staticFile{}, log: log}
	files, err := fs.Glob(fsys, "static/*")
	if err != nil {
		return nil, fmt.Errorf("ui: list static files: %w", err)
	}
	for _, f := range files {
		body, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("ui: read %s: %w", f, err)
		}
		sum := sha256.Sum256(body)
		p.static[path.Base(f)] = staticFile{body: body, ctype: mime.TypeByExtension(path.Ext(f)), hash: hex.EncodeToString(sum[:6])}
	}
	funcs := template.FuncMap{"static": p.staticURL, "dict": dict}
	base, err := template.New("").Funcs(funcs).ParseFS(fsys, "templates/layout/*.html", "templates/partials/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: parse layout and partials: %w", err)
	}
	onDisk, err := fs.Glob(fsys, "templates/pages/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: list pages: %w", err)
	}
	for _, f := range onDisk {
		if name := strings.TrimSuffix(path.Base(f), ".html"); !slices.Contains(pageNames, name) {
			return nil, fmt.Errorf("ui: template %s belongs to no page", f)
		}
	}
	for _, name := range pageNames {
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(fsys, "templates/pages/"+name+".html")
		}
		if err != nil {
			return nil, fmt.Errorf("ui: parse page %s: %w", name, err)
		}
		if t.Lookup("content") == nil {
			return nil, fmt.Errorf("ui: page %s defines no content", name)
		}
		p.views[name] = t
	}
	return p, nil
}

func (p *pages) staticURL(name string) (string, error) {
	f, ok := p.static[name]
	if !ok {
		return "", fmt.Errorf("no static file %q", name)
	}
	return "/static/" + name + "?v=" + f.hash, nil
}

// render runs a page into a buffer first, so a template error is a clean
// 500 and never half a page.
func (p *pages) render(c *gin.Context, code int, name string, v view) {
	p.execute(c, code, name, "base", v)
}

// fragment renders one partial of a page's set, for scripts that swap a
// part of the page.
func (p *pages) fragment(c *gin.Context, page, partial string, data any) {
	p.execute(c, http.StatusOK, page, partial, data)
}

func (p *pages) execute(c *gin.Context, code int, page, tmpl string, data any) {
	var buf bytes.Buffer
	if err := p.renderTo(&buf, page, tmpl, data); err != nil {
		p.log.Error("admin page failed to render", "page", page, "template", tmpl, "err", err)
		c.String(http.StatusInternalServerError, "the %s page failed to render; corral's log has the reason", page)
		return
	}
	c.Data(code, "text/html; charset=utf-8", buf.Bytes())
}

// renderTo runs one template of a page's set.
func (p *pages) renderTo(w io.Writer, page, tmpl string, data any) error {
	t, ok := p.views[page]
	if !ok {
		return fmt.Errorf("no template for the %s page", page)
	}
	return t.ExecuteTemplate(w, tmpl, data)
}

// serveStatic answers /static/NAME; with the current ?v= it may be cached
// for good, anything else is revalidated.
func (p *pages) serveStatic(c *gin.Context) {
	f, ok := p.static[c.Param("name")]
	if !ok {
		c.String(http.StatusNotFound, "no such file")
		return
	}
	if c.Query("v") == f.hash {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "no-cache")
	}
	c.Header("ETag", `"`+f.hash+`"`)
	c.Header("X-Content-Type-Options", "nosniff")
	if c.GetHeader("If-None-Match") == `"`+f.hash+`"` {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, f.ctype, f.body)
}

// pageHeaders keeps pages to our own script and style, out of frames,
// and their URLs out of other sites' logs.
func pageHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// dict makes a map of its key, value arguments, for partials that need
// more than one value.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
