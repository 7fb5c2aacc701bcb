package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine/keys"
)

// keysView is the keys page: every key, a form for a new one, and the
// secret of the key just made, shown this once.
type keysView struct {
	Keys    []keyRow
	Created *CreatedKey
	Revoke  string  // a key whose revocation waits for confirmation
	Limits  *keyRow // a key whose limits are being edited
	Changed string  // a key whose limits were just changed
	Revoked string  // a key just revoked
	Error   string
	Form    keyForm // what was typed, kept after an error
}

type keyRow struct {
	keys.Key
	ModelsText, LimitsText, LastUsedText, ExpiresText string
}

type keyForm struct{ Name, Note, Days, Models string }

func (a *admin) keysView() keysView {
	var v keysView
	for _, k := range a.Keys.List() {
		row := keyRow{Key: k, ModelsText: "all", LimitsText: LimitsText(k.Limits), LastUsedText: "never", ExpiresText: "never"}
		if len(k.Models) > 0 {
			row.ModelsText = strings.Join(k.Models, ", ")
		}
		if !k.LastUsed.IsZero() {
			row.LastUsedText = k.LastUsed.Local().Format(time.DateTime)
		}
		if !k.ExpiresAt.IsZero() {
			row.ExpiresText = k.ExpiresAt.Local().Format(time.DateOnly)
		}
		v.Keys = append(v.Keys, row)
	}
	return v
}

func (a *admin) keysPage(c *gin.Context) {
	v := a.keysView()
	v.Revoked, v.Changed = c.Query("revoked"), c.Query("changed")
	a.pages.render(c, http.StatusOK, "keys", pageView(c, "API keys", "keys", v))
}

// createKeyForm makes a key from the page's form and shows its secret
// once, on the answer to the POST itself: nothing keeps it.
func (a *admin) createKeyForm(c *gin.Context) {
	form := keyForm{Name: strings.TrimSpace(c.PostForm("name")), Note: strings.TrimSpace(c.PostForm("note")),
		Days: strings.TrimSpace(c.PostForm("days")), Models: strings.TrimSpace(c.PostForm("models"))}
	opts := keys.CreateOptions{Name: form.Name, Note: form.Note}
	fail := func(code int, msg string) {
		v := a.keysView()
		v.Error, v.Form = msg, form
		a.pages.render(c, code, "keys", pageView(c, "API keys", "keys", v))
	}
	if form.Days != "" {
		days, err := strconv.Atoi(form.Days)
		if err != nil || days < 1 || days > 3650 {
			fail(http.StatusBadRequest, "Expires in: give a whole number of days from 1 to 3650, or leave it empty for never.")
			return
		}
		opts.ExpiresAt = time.Now().Add(time.Duration(days) * 24 * time.Hour)
	}
	for m := range strings.SplitSeq(form.Models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			opts.AllowedModels = append(opts.AllowedModels, m)
		}
	}
	secret, k, err := a.Keys.Create(c.Request.Context(), opts)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	a.log.Info("API key created from the admin page", "name", k.Name)
	v := a.keysView()
	v.Created = &CreatedKey{Secret: secret, Key: k}
	a.pages.render(c, http.StatusOK, "keys", pageView(c, "API keys", "keys", v))
}

// revokeKeyConfirm asks before revoking: the page names the key and what
// stops working.
func (a *admin) revokeKeyConfirm(c *gin.Context) {
	v := a.keysView()
	v.Revoke = c.Param("name")
	a.pages.render(c, http.StatusOK, "keys", pageView(c, "API keys", "keys", v))
}

func (a *admin) revokeKeyForm(c *gin.Context) {
	name := c.Param("name")
	if _, err := a.Keys.Revoke(c.Request.Context(), name); err != nil {
		v := a.keysView()
		v.Error = err.Error()
		a.pages.render(c, http.StatusBadRequest, "keys", pageView(c, "API keys", "keys", v))
		return
	}
	a.log.Info("API key revoked from the admin page", "name", name)
	c.Redirect(http.StatusSeeOther, "/keys?revoked="+url.QueryEscape(name))
}

// limitFields are the limits the page edits, by form field.
func limitFields(l *keys.Limits) []struct {
	field string
	to    *int64
} {
	return []struct {
		field string
		to    *int64
	}{
		{"requests_per_minute", &l.RequestsPerMinute},
		{"tokens_per_minute", &l.TokensPerMinute},
		{"tokens_per_day", &l.TokensPerDay},
		{"tokens_per_month", &l.TokensPerMonth},
		{"weight", &l.Weight},
	}
}

// limitsEdit shows a key's limits in a form.
func (a *admin) limitsEdit(c *gin.Context) {
	v := a.keysView()
	for i := range v.Keys {
		if v.Keys[i].Name == c.Param("name") {
			v.Limits = &v.Keys[i]
		}
	}
	if v.Limits == nil {
		v.Error = "There is no key called " + c.Param("name") + "."
		a.pages.render(c, http.StatusNotFound, "keys", pageView(c, "API keys", "keys", v))
		return
	}
	a.pages.render(c, http.StatusOK, "keys", pageView(c, "API keys", "keys", v))
}

// limitsForm sets every limit the form shows: empty or 0 is none.
func (a *admin) limitsForm(c *gin.Context) {
	name := c.Param("name")
	var l keys.Limits
	for _, k := range a.Keys.List() {
		if k.Name == name {
			l = k.Limits
		}
	}
	fail := func(msg string) {
		v := a.keysView()
		v.Error = msg
		a.pages.render(c, http.StatusBadRequest, "keys", pageView(c, "API keys", "keys", v))
	}
	for _, f := range limitFields(&l) {
		raw := strings.TrimSpace(c.PostForm(f.field))
		if raw == "" {
			*f.to = 0
			continue
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			fail(strings.ReplaceAll(f.field, "_", " ") + ": give a whole number, 0 or empty for no limit.")
			return
		}
		*f.to = n
	}
	l.Batch = c.PostForm("batch") == "on"
	if _, err := a.Keys.SetLimits(c.Request.Context(), name, l); err != nil {
		fail(err.Error())
		return
	}
	a.log.Info("API key limits changed from the admin page", "name", name)
	c.Redirect(http.StatusSeeOther, "/keys?changed="+url.QueryEscape(name))
}
