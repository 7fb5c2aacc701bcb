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
	d, m := newKeysDeps(t)
	return NewAPI(d), m
}

func newKeysDeps(t *testing.T) (Deps, *keys.Manager) {
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
	return Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Keys: m}, m
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
func (failingKeys) SetLimits(context.Context, string, keys.Limits) (keys.Key, error) {
	return keys.Key{}, errors.New("keys: set limits: store: disk full")
}
func (failingKeys) RotateInternal(context.Context) (string, error) {
	return "", errors.New("keys: rotate: store: disk full")
}

func TestKeysAPIStoreFailure(t *testing.T) {
	gin.SetMode(gin.TestMode)
	api := NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Keys: failingKeys{}})
	for _, r := range []*http.Request{
		httptest.NewRequest("POST", "/api/v1/keys", strings.NewReader(`{"name":"x"}`)),
		httptest.NewRequest("DELETE", "/api/v1/keys/x", nil),
		httptest.NewRequest("PUT", "/api/v1/keys/x/limits", strings.NewReader(`{"tokens_per_day":1}`)),
		httptest.NewRequest("POST", "/api/v1/keys/internal/rotate", nil),
	} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		if rec.Code != 500 || !strings.Contains(rec.Body.String(), "disk full") {
			t.Fatalf("%s %s = %d %s", r.Method, r.URL, rec.Code, rec.Body)
		}
	}
}

func TestKeysAPINeedsToken(t *testing.T) {
	d, _ := newKeysDeps(t)
	guarded := adminFor(t, "s3cret", d)
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

// TestKeyLimitsAPI sets limits field by field: a field left out keeps
// its value.
func TestKeyLimitsAPI(t *testing.T) {
	api, m := newKeysAPI(t)
	if _, _, err := m.Create(context.Background(), keys.CreateOptions{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name, body string
		code       int
		want       string // in the body
		limits     keys.Limits
	}{
		{"two limits", `{"requests_per_minute":60,"tokens_per_day":100000}`, 200, `"limits":{"requests_per_minute":60,"tokens_per_minute":0,"tokens_per_day":100000,"tokens_per_month":0}`,
			keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000}},
		{"one more keeps the others", `{"tokens_per_month":2000000}`, 200, `"tokens_per_month":2000000`,
			keys.Limits{RequestsPerMinute: 60, TokensPerDay: 100000, TokensPerMonth: 2000000}},
		{"zero lifts one", `{"requests_per_minute":0,"tokens_per_minute":5000}`, 200, `"tokens_per_minute":5000`,
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 100000, TokensPerMonth: 2000000}},
		{"negative", `{"tokens_per_day":-5}`, 400, "tokens per day limit -5", keys.Limits{TokensPerMinute: 5000, TokensPerDay: 100000, TokensPerMonth: 2000000}},
		{"not a number", `{"tokens_per_day":"lots"}`, 400, "request body", keys.Limits{TokensPerMinute: 5000, TokensPerDay: 100000, TokensPerMonth: 2000000}},
		{"fraction", `{"tokens_per_day":1.5}`, 400, "request body", keys.Limits{TokensPerMinute: 5000, TokensPerDay: 100000, TokensPerMonth: 2000000}},
		{"misspelt", `{"tokens_per_week":5}`, 400, `unknown field \"tokens_per_week\"`, keys.Limits{TokensPerMinute: 5000, TokensPerDay: 100000, TokensPerMonth: 2000000}},
		{"nothing", `{}`, 400, "no limit given", keys.Limits{TokensPerMinute: 5000, TokensPerDay: 100000, TokensPerMonth: 2000000}},
		{"queue settings keep the caps", `{"weight":4,"batch":true,"max_queue":10,"max_wait_seconds":30}`, 200,
			`"tokens_per_month":2000000,"weight":4,"batch":true,"max_queue":10,"max_wait_seconds":30}`,
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 100000, TokensPerMonth: 2000000, Weight: 4, Batch: true, MaxQueue: 10, MaxWaitSeconds: 30}},
		{"a cap keeps the queue settings", `{"tokens_per_day":7}`, 200, `"tokens_per_day":7,`,
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 7, TokensPerMonth: 2000000, Weight: 4, Batch: true, MaxQueue: 10, MaxWaitSeconds: 30}},
		{"interactive and the default queue again", `{"batch":false,"max_queue":0}`, 200, `"tokens_per_month":2000000,"weight":4,"max_wait_seconds":30}`,
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 7, TokensPerMonth: 2000000, Weight: 4, MaxWaitSeconds: 30}},
		{"weight too large", `{"weight":1001}`, 400, "weight 1001: give a whole number from 0 (the default, 1) to 1000",
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 7, TokensPerMonth: 2000000, Weight: 4, MaxWaitSeconds: 30}},
		{"queue too long", `{"max_queue":100001,"weight":2}`, 400, "max queue 100001 requests",
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 7, TokensPerMonth: 2000000, Weight: 4, MaxWaitSeconds: 30}},
		{"wait too long", `{"max_wait_seconds":86401}`, 400, "max wait 86401 seconds",
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 7, TokensPerMonth: 2000000, Weight: 4, MaxWaitSeconds: 30}},
		{"batch not a bool", `{"batch":"yes"}`, 400, "request body",
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 7, TokensPerMonth: 2000000, Weight: 4, MaxWaitSeconds: 30}},
		{"fractional weight", `{"weight":0.5}`, 400, "request body",
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 7, TokensPerMonth: 2000000, Weight: 4, MaxWaitSeconds: 30}},
		{"back to the defaults", `{"weight":0,"max_wait_seconds":0}`, 200, `"tokens_per_month":2000000}`,
			keys.Limits{TokensPerMinute: 5000, TokensPerDay: 7, TokensPerMonth: 2000000}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, httptest.NewRequest("PUT", "/api/v1/keys/alice/limits", strings.NewReader(s.body)))
			if rec.Code != s.code || !strings.Contains(rec.Body.String(), s.want) {
				t.Fatalf("PUT %s = %d %s\nwant %d with %s", s.body, rec.Code, rec.Body, s.code, s.want)
			}
			if l, _ := m.Limits("alice"); l != s.limits {
				t.Fatalf("limits = %+v, want %+v", l, s.limits)
			}
		})
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("PUT", "/api/v1/keys/bob/limits", strings.NewReader(`{"tokens_per_day":1}`)))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `no API key named \"bob\"`) {
		t.Fatalf("limits of an unknown key = %d %s", rec.Code, rec.Body)
	}
}

func TestRotateInternalAPI(t *testing.T) {
	api, m := newKeysAPI(t)
	var secrets []string
	for range 2 {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/keys/internal/rotate", nil))
		var got CreatedKey
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
			t.Fatalf("rotate = %d %s", rec.Code, rec.Body)
		}
		if got.Name != keys.InternalName || !got.Internal || !strings.HasPrefix(got.Secret, got.Prefix) || rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("rotate = %+v, headers %v", got, rec.Header())
		}
		secrets = append(secrets, got.Secret)
	}
	if _, err := m.Authorize(context.Background(), secrets[0], ""); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("first secret after the second rotation: %v", err)
	}
	if name, err := m.Authorize(context.Background(), secrets[1], ""); err != nil || name != keys.InternalName {
		t.Fatalf("second secret = %q, %v", name, err)
	}
}
