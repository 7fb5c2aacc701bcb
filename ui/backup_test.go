package ui

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

type fakeBackup struct {
	body string
	err  error // before the first byte
}

func (f fakeBackup) Backup(w io.Writer, size func(int64)) (int64, error) {
	if f.err != nil {
		return 0, f.err
	}
	size(int64(len(f.body)))
	n, err := io.WriteString(w, f.body)
	return int64(n), err
}

func TestBackupEndpoint(t *testing.T) {
	gin.SetMode(gin.TestMode)
	deps := Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Backup: fakeBackup{body: "bbolt bytes"}}
	api := NewAPI(deps)
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/backup", nil))
	if rec.Code != 200 || rec.Body.String() != "bbolt bytes" {
		t.Fatalf("backup: %d %q", rec.Code, rec.Body)
	}
	h := rec.Header()
	if cd := h.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="corral-backup-`) || !strings.HasSuffix(cd, `.db"`) {
		t.Fatalf("Content-Disposition = %q", cd)
	}
	if h.Get("Content-Length") != "11" || h.Get("Content-Type") != "application/octet-stream" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers = %v", h)
	}

	// On the admin listener: the token (or a session) first.
	guarded := adminFor(t, "s3cret", deps)
	for auth, code := range map[string]int{"": http.StatusUnauthorized, "Bearer nope": http.StatusUnauthorized, "Bearer s3cret": 200} {
		req := httptest.NewRequest("GET", "/api/v1/backup", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		guarded.ServeHTTP(rec, req)
		if rec.Code != code || (code == 200) != (rec.Body.String() == "bbolt bytes") {
			t.Fatalf("admin backup with %q: %d %q", auth, rec.Code, rec.Body)
		}
	}

	// A failure before the first byte is a JSON error.
	api = NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Backup: fakeBackup{err: errors.New("store: backup: disk full")}})
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/backup", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "disk full") {
		t.Fatalf("failed backup: %d %q", rec.Code, rec.Body)
	}
	// Without a store, no endpoint.
	rec = httptest.NewRecorder()
	NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}}).ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/backup", nil))
	if rec.Code != 404 {
		t.Fatalf("no backup dep: %d", rec.Code)
	}
}

// TestBackupFromSettingsPage: the settings page links to the download,
// and a signed-in browser following the link gets the file.
func TestBackupFromSettingsPage(t *testing.T) {
	ta := adminWith(t, Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Backup: fakeBackup{body: "bbolt bytes"}}, time.Now())
	cookie, _ := ta.signIn(t)
	code, page := ta.get(t, cookie, "/settings")
	if code != 200 || !strings.Contains(page, `href="/api/v1/backup" download`) {
		t.Fatalf("settings page %d lacks the backup link:\n%s", code, page)
	}
	req := httptest.NewRequest("GET", "/api/v1/backup", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(cookie)
	rec := ta.do(req)
	if rec.Code != 200 || rec.Body.String() != "bbolt bytes" || !strings.HasPrefix(rec.Header().Get("Content-Disposition"), "attachment;") {
		t.Fatalf("download from the page: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	// Without a store there is no link.
	ta = adminWith(t, Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}}, time.Now())
	cookie, _ = ta.signIn(t)
	if _, page := ta.get(t, cookie, "/settings"); strings.Contains(page, "/api/v1/backup") {
		t.Fatal("backup link without a backup")
	}
}
