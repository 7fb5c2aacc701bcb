package ui

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

type fakeCORS struct{ list []string }

func (f *fakeCORS) Origins() []string { return append([]string{}, f.list...) }

func (f *fakeCORS) SetOrigins(_ context.Context, origins []string) error {
	for _, o := range origins {
		if !strings.HasPrefix(o, "https://") && o != "*" {
			return errors.New("CORS origin " + o + ": want scheme://host[:port]")
		}
	}
	f.list = origins
	return nil
}

func TestCORSSettingsAPI(t *testing.T) {
	gin.SetMode(gin.TestMode)
	c := &fakeCORS{list: []string{}}
	deps := Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, CORS: c}
	api := NewAPI(deps)
	guarded := adminFor(t, "s3cret", deps)
	for _, tc := range []struct {
		method, body, auth string
		code               int
		want               string
	}{
		{"GET", "", "", 200, `{"origins":[],"enabled":false}`},
		{"PUT", `{"origins":["https://app.example.com"]}`, "", 200, `{"origins":["https://app.example.com"],"enabled":true}`},
		{"GET", "", "", 200, `{"origins":["https://app.example.com"],"enabled":true}`},
		{"PUT", `{"origins":["ftp://x"]}`, "", 400, `{"error":"CORS origin ftp://x: want scheme://host[:port]"}`},
		{"PUT", `{"origins":["https://a.example"],"extra":1}`, "", 400, `unknown field`},
		{"GET", "", "", 200, `{"origins":["https://app.example.com"],"enabled":true}`},
		// What GET answered can be PUT back, enabled and all.
		{"PUT", `{"origins":[],"enabled":true}`, "", 200, `{"origins":[],"enabled":false}`},
		// On the admin listener, behind the token.
		{"GET", "", "guarded-none", 401, ``},
		{"GET", "", "guarded", 200, `"enabled":false`},
	} {
		req := httptest.NewRequest(tc.method, "/api/v1/settings/cors", strings.NewReader(tc.body))
		rec := httptest.NewRecorder()
		switch tc.auth {
		case "":
			api.ServeHTTP(rec, req)
		case "guarded":
			req.Header.Set("Authorization", "Bearer s3cret")
			guarded.ServeHTTP(rec, req)
		default:
			guarded.ServeHTTP(rec, req)
		}
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %s", tc.method, tc.body, rec.Code, rec.Body, tc.code, tc.want)
		}
	}
}
