package main

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"os"

	"github.com/coder/websocket"
)

//go:embed assets
var assets embed.FS

// staticFS serves the page's stylesheet and script from files of their
// own, so a Content-Security-Policy without 'unsafe-inline' still lets
// them run.
var staticFS = mustSub(assets, "assets/static")

var indexTemplate = template.Must(template.ParseFS(assets, "assets/index.html"))

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // at init only: the directory is embedded above
	}
	return sub
}

// handleIndex serves the page: it names the role and shows a message
// echoed through /ws on the same origin.
func (s *server) handleIndex(w http.ResponseWriter, r *http.Request) {
	host, _ := os.Hostname()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := indexTemplate.Execute(w, map[string]string{"Role": string(s.cfg.Role), "Host": host}); err != nil {
		s.log.Error("render page", "err", err)
	}
}

// handleWebsocket echoes every message, text or binary, until the client
// closes or the server shuts down. Any origin is accepted, as Open WebUI
// accepts any by default: a proxy in front may rewrite Host.
func (s *server) handleWebsocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered
	}
	defer c.CloseNow()
	ctx := r.Context()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			if status := websocket.CloseStatus(err); status == websocket.StatusNormalClosure || status == websocket.StatusGoingAway {
				return
			}
			if !errors.Is(err, ctx.Err()) {
				s.log.Info("websocket closed", "err", err)
			}
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}
