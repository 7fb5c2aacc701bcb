package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// FrontDoorSettings are the choices that shape the front door and the
// chat UI: stored here, in force when corral starts again.
type FrontDoorSettings interface {
	FrontDoorChoice() FrontDoorChoice
	SetFrontDoorChoice(FrontDoorChoice) error
	// Restart starts corral again in place, with the stored choices; the
	// containers keep running and are adopted.
	Restart()
}

// FrontDoorChoice is the domain (comma-separated names), the ACME
// e-mail and CA, and the chat UI mode.
type FrontDoorChoice struct {
	Domain string `json:"domain"`
	Email  string `json:"email"`
	CA     string `json:"acme_ca"`
	ChatUI string `json:"chat_ui"`
	// Fixed names the flags given at start (domain, email, acme-ca,
	// chat-ui): they win, so the page cannot change those.
	Fixed map[string]bool `json:"fixed,omitempty"`
	// Pending names the choices stored but not in force (domain, email,
	// acme-ca, chat-ui); a restart applies them.
	Pending []string `json:"pending,omitempty"`
}

// Certificates is what the pages show of the front door's certificates.
type Certificates interface {
	// CertReport is false without a domain.
	CertReport() (CertReport, bool)
}

// CertReport is the certificates' state in the pages' words.
type CertReport struct {
	Names     []string
	Source    string // "acme" or "files"
	CA        string
	State     string
	NotAfter  time.Time // the earliest expiry of the certificates in service; zero: none yet
	LastError string
	Hint      string
}

// certExpiryWarning is when the overview starts to warn: certmagic
// renews at a third of the lifetime left (30 of 90 days), so a
// certificate this close to its end has failed to renew for weeks.
const certExpiryWarning = 14 * 24 * time.Hour

// settingsView is the settings page.
type settingsView struct {
	Cert      *CertReport
	ChatUI    map[string]any // the chat UI's status, by its JSON names
	CORS      []string
	HasCORS   bool
	Filter    []string
	HasFilter bool
	Backup    bool
	Door      *FrontDoorChoice
	Modes     []string
	Done      string
	Error     string
}

func (a *admin) settingsView() settingsView {
	v := settingsView{Backup: a.Backup != nil}
	if a.Certs != nil {
		if r, ok := a.Certs.CertReport(); ok {
			v.Cert = &r
		}
	}
	if a.ChatUI != nil {
		// By its JSON names: the status is the chat UI's own type.
		if raw, err := json.Marshal(a.ChatUI.Status()); err == nil {
			json.Unmarshal(raw, &v.ChatUI)
		}
	}
	if a.CORS != nil {
		v.HasCORS, v.CORS = true, a.CORS.Origins()
	}
	if a.Door != nil {
		ch := a.Door.FrontDoorChoice()
		v.Door, v.Modes = &ch, []string{"open-webui", "lobechat", "lobechat-db", "none"}
	}
	if a.Filter != nil {
		v.HasFilter, v.Filter = true, a.Filter.Phrases()
	}
	return v
}

func (a *admin) settingsPage(c *gin.Context) {
	v := a.settingsView()
	v.Done = c.Query("done")
	a.pages.render(c, http.StatusOK, "settings", pageView(c, "Settings", "settings", v))
}

// listForm saves a list typed one item a line with set.
func (a *admin) listForm(field, what string, set func(context.Context, []string) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		var items []string
		for line := range strings.SplitSeq(c.PostForm(field), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				items = append(items, line)
			}
		}
		if err := set(c.Request.Context(), items); err != nil {
			v := a.settingsView()
			v.Error = err.Error()
			a.pages.render(c, http.StatusBadRequest, "settings", pageView(c, "Settings", "settings", v))
			return
		}
		a.log.Info(what+" changed from the admin page", "entries", len(items))
		c.Redirect(http.StatusSeeOther, "/settings?done="+url.QueryEscape("The "+what+" is saved and in force"))
	}
}

// doorForm stores the domain, e-mail, CA and chat UI; a restart applies
// them.
func (a *admin) doorForm(c *gin.Context) {
	ch := FrontDoorChoice{Domain: strings.TrimSpace(c.PostForm("domain")), Email: strings.TrimSpace(c.PostForm("email")),
		CA: strings.TrimSpace(c.PostForm("acme_ca")), ChatUI: c.PostForm("chat_ui")}
	if err := a.Door.SetFrontDoorChoice(ch); err != nil {
		v := a.settingsView()
		v.Error = err.Error()
		a.pages.render(c, http.StatusBadRequest, "settings", pageView(c, "Settings", "settings", v))
		return
	}
	a.log.Info("front door settings saved from the admin page", "domain", ch.Domain, "chat_ui", ch.ChatUI)
	c.Redirect(http.StatusSeeOther, "/settings?done="+url.QueryEscape("Saved: restart corral below to put them in force"))
}

// restartForm starts corral again in place; the page that follows waits
// for it.
func (a *admin) restartForm(c *gin.Context) {
	a.log.Info("restart asked from the admin page")
	a.pages.render(c, http.StatusOK, "settings", pageView(c, "Settings", "settings", settingsView{Done: "corral is starting again with the saved settings: reload this page in a few seconds (the containers keep running)"}))
	a.Door.Restart()
}
