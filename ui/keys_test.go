package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"corral/engine/keys"
	"corral/engine/store"
)

func newKeysAPI(t *testing.T) (http.Handler, *keys.Manager) {
	t.Helper()
	gin.SetMode(gin.TestMode)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := keys.New(st)
	if err != nil {
		t.Fatal(err)
	}
	return NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Keys: m}), m
}

// TestKeysAPI walks through the key endpoints in order: each step sees
// what the ones before it did.
func TestKeysAPI(t *testing.T) {
	api, m := newKeysAPI(t)
	steps := []struct {
		name, method, path, body string
		code                     int
		want                     string // in the body
	}{
		{"empty list", "GET", "/api/v1/keys", "", 200, `{"keys":[]}`},
		{"create", "POST", "/api/v1/keys", `{"name":"ci@build.example","note":"CI","models":["llama3.2"]}`, 201, `"key":"crl_`},
		{"create with expiry", "POST", "/api/v1/keys", `{"name":"temp","expires_at":"2999-01-01T00:00:00Z"}`, 201, `"expires_at":"2999-01-01T00:00:00Z"`},
		{"duplicate name", "POST", "/api/v1/keys", `{"name":"ci@build.example"}`, 409, "already exists"},
		{"bad name", "POST", "/api/v1/keys", `{"name":"a b"}`, 400, "use 1-64"},
		{"no name", "POST", "/api/v1/keys", `{}`, 400, "use 1-64"},
		{"past expiry", "POST", "/api/v1/keys", `{"name":"old","expires_at":"2001-01-01T00:00:00Z"}`, 400, "not in the future"},
		{"expiry not RFC 3339", "POST", "/api/v1/keys", `{"name":"old","expires_at":"tomorrow"}`, 400, "request body"},
		{"malformed JSON", "POST", "/api/v1/keys", `{"name":`, 400, "bad request body: unexpected EOF"},
		{"not an object", "POST", "/api/v1/keys", `["name"]`, 400, "request body"},
		{"misspelt field", "POST", "/api/v1/keys", `{"name":"x","model":["a"]}`, 400, `unknown field \"model\"`},
		{"two objects", "POST", "/api/v1/keys", `{"name":"x"}{"name":"y"}`, 400, "more than one JSON value"},
		{"empty body", "POST", "/api/v1/keys", ``, 400, "request body is empty"},
		{"oversized body", "POST", "/api/v1/keys", `{"name":"big","note":"` + strings.Repeat("n", 70<<10) + `"}`, 400, "over 64 KiB"},
		{"revoke unknown", "DELETE", "/api/v1/keys/nobody", "", 404, `no API key named \"nobody\"`},
		{"revoke", "DELETE", "/api/v1/keys/ci@build.example", "", 200, `"status":"revoked"`},
		{"revoke again", "DELETE", "/api/v1/keys/ci%40build.example", "", 409, "already revoked"},
		{"revoke without a name", "DELETE", "/api/v1/keys", "", 404, "no such endpoint"},
		{"list", "GET", "/api/v1/keys", "", 200, `"name":"ci@build.example"`},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			req := httptest.NewRequest(s.method, s.path, strings.NewReader(s.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code != s.code || !strings.Contains(rec.Body.String(), s.want) {
				t.Fatalf("%s %s = %d %s\nwant %d with %s", s.method, s.path, rec.Code, rec.Body, s.code, s.want)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not a JSON object: %s", rec.Body)
			}
			if s.code >= 400 && body["error"] == nil {
				t.Fatalf("error body lacks error: %s", rec.Body)
			}
			if s.code == 201 && rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("the answer with the secret may be cached: %v", rec.Header())
			}
		})
	}

	// The secret from the create works, and is in no other answer.
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/keys", strings.NewReader(`{"name":"fresh","models":["qwen3:8b"]}`)))
	var created CreatedKey
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || rec.Code != 201 {
		t.Fatalf("create = %d %s", rec.Code, rec.Body)
	}
	if name, err := m.Authorize(context.Background(), created.Secret, "qwen3:8b"); err != nil || name != "fresh" {
		t.Fatalf("authorize with the created secret = %q, %v", name, err)
	}
	if created.Name != "fresh" || created.Status != keys.StatusActive || created.Models[0] != "qwen3:8b" || !strings.HasPrefix(created.Secret, created.Prefix) {
		t.Fatalf("created = %+v", created)
	}
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/keys", nil))
	if strings.Contains(rec.Body.String(), created.Secret) || strings.Contains(rec.Body.String(), `"key"`) {
		t.Fatalf("list shows a secret: %s", rec.Body)
	}
	var list KeyList
	json.Unmarshal(rec.Body.Bytes(), &list)
	if len(list.Keys) != 3 {
		t.Fatalf("list = %s", rec.Body)
	}
}

// failingKeys fails as a broken store would.
type failingKeys struct{}

func (failingKeys) Create(context.Context, keys.CreateOptions) (string, keys.Key, error) {
	return "", keys.Key{}, errors.New("keys: create \"x\": store: disk full")
}
func (failingKeys) Revoke(context.Context, string) (keys.Key, error) {
	return keys.Key{}, errors.New("keys: revoke: store: disk full")
}
func (failingKeys) List() []keys.Key { return nil }

func TestKeysAPIStoreFailure(t *testing.T) {
	gin.SetMode(gin.TestMode)
	api := NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Keys: failingKeys{}})
	for _, r := range []*http.Request{
		httptest.NewRequest("POST", "/api/v1/keys", strings.NewReader(`{"name":"x"}`)),
		httptest.NewRequest("DELETE", "/api/v1/keys/x", nil),
	} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		if rec.Code != 500 || !strings.Contains(rec.Body.String(), "disk full") {
			t.Fatalf("%s %s = %d %s", r.Method, r.URL, rec.Code, rec.Body)
		}
	}
}

func TestKeysAPINeedsToken(t *testing.T) {
	api, _ := newKeysAPI(t)
	guarded := RequireToken("s3cret", api)
	rec := httptest.NewRecorder()
	guarded.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/keys", strings.NewReader(`{"name":"x"}`)))
	if rec.Code != 401 {
		t.Fatalf("create without token = %d", rec.Code)
	}
	req := httptest.NewRequest("POST", "/api/v1/keys", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	rec = httptest.NewRecorder()
	guarded.ServeHTTP(rec, req)
	if rec.Code != 201 {
		t.Fatalf("create with token = %d %s", rec.Code, rec.Body)
	}
}
