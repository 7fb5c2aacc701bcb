package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine/store"
	"corral/engine/usage"
)

func newUsageAPI(t *testing.T) (*usage.Meter, *store.Store) {
	t.Helper()
	gin.SetMode(gin.TestMode)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := usage.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

// settle records one request of key for model at the given time.
func settle(t *testing.T, m *usage.Meter, at time.Time, key, model, user string, prompt, completion, status int) {
	t.Helper()
	r, err := m.Reserve(context.Background(), key, model, 10)
	if err != nil {
		t.Fatal(err)
	}
	r.Settle(usage.Record{Time: at, User: user, PromptTokens: prompt, CompletionTokens: completion, Status: status})
}

func TestUsageAPI(t *testing.T) {
	m, _ := newUsageAPI(t)
	api := NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Usage: m})
	day := func(d int) time.Time { return time.Date(2024, 3, d, 12, 0, 0, 0, time.UTC) }
	settle(t, m, day(1), "alice", "llama3.2", "ann", 10, 20, 200)
	settle(t, m, day(2), "alice", "qwen3:8b", "", 1, 2, 200)
	r, err := m.Reserve(context.Background(), "bob", "llama3.2", 10)
	if err != nil {
		t.Fatal(err)
	}
	r.Settle(usage.Record{Time: day(2), User: "ben", PromptTokens: 100, Status: 503, Queued: 1500 * time.Millisecond})
	settle(t, m, time.Time{}, "carol", "llama3.2", "", 5, 5, 200) // now

	cases := []struct {
		name, query string
		code        int
		rows        string // group:requests/prompt/completion/errors; or text in the error
	}{
		{"by key, all time", "", 200, "bob:1/100/0/1 alice:2/11/22/0 carol:1/5/5/0"},
		{"by model", "?by=model", 200, "llama3.2:3/115/25/1 qwen3:8b:1/1/2/0"},
		{"by user", "?by=user", 200, "ben:1/100/0/1 ann:1/10/20/0 :2/6/7/0"},
		{"by day in a range", "?by=day&since=2024-03-01&until=2024-03-02", 200, "2024-03-01:1/10/20/0 2024-03-02:2/101/2/1"},
		{"until a date includes it", "?by=day&until=2024-03-01", 200, "2024-03-01:1/10/20/0"},
		{"since an RFC 3339 time", "?by=day&since=2024-03-02T23:00:00Z&until=2024-03-31", 200, "2024-03-02:2/101/2/1"},
		{"one key", "?by=model&key=alice", 200, "llama3.2:1/10/20/0 qwen3:8b:1/1/2/0"},
		{"days back", "?since=1d", 200, "carol:1/5/5/0"},
		{"nothing", "?key=dave", 200, ""},
		{"bad by", "?by=instance", 400, "key, model, user or day"},
		{"bad since", "?since=yesterday", 400, `since \"yesterday\"`},
		{"bad until", "?until=7d", 400, `until \"7d\"`},
		{"until before since", "?since=2024-03-02&until=2024-03-01", 400, "is not after since"},
		{"unknown parameter", "?sinse=7d", 400, `unknown parameter \"sinse\"`},
		{"repeated parameter", "?by=key&by=day", 400, `\"by\" given 2 times`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/usage"+tc.query, nil))
			if rec.Code != tc.code {
				t.Fatalf("GET %s = %d %s, want %d", tc.query, rec.Code, rec.Body, tc.code)
			}
			if tc.code != 200 {
				if !strings.Contains(rec.Body.String(), tc.rows) || !strings.Contains(rec.Body.String(), `"error"`) {
					t.Fatalf("GET %s = %s, want an error with %s", tc.query, rec.Body, tc.rows)
				}
				return
			}
			if !strings.Contains(rec.Body.String(), `"rows":[`) {
				t.Fatalf("rows not a list: %s", rec.Body)
			}
			var rep UsageReport
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rep.Rows {
				got = append(got, fmt.Sprintf("%s:%d/%d/%d/%d", r.Group, r.Requests, r.PromptTokens, r.CompletionTokens, r.Errors))
			}
			if g := strings.Join(got, " "); g != tc.rows {
				t.Fatalf("GET %s rows = %s\n want %s", tc.query, g, tc.rows)
			}
		})
	}

	// The row's fields are named as documented.
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/usage?key=bob", nil))
	want := `{"by":"key","key":"bob","rows":[{"group":"bob","requests":1,"prompt_tokens":100,"completion_tokens":0,"errors":1,"queued_ns":1500000000}]}`
	if strings.TrimSpace(rec.Body.String()) != want {
		t.Fatalf("body = %s\nwant %s", rec.Body, want)
	}
}

type failingUsage struct{}

func (failingUsage) Query(context.Context, usage.Query) ([]usage.Row, error) {
	return nil, errors.New("usage: query: store: disk on fire")
}

func TestUsageAPIFailure(t *testing.T) {
	gin.SetMode(gin.TestMode)
	api := NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Usage: failingUsage{}})
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/usage", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "disk on fire") {
		t.Fatalf("GET /api/v1/usage = %d %s", rec.Code, rec.Body)
	}
	// Without a meter there is no endpoint.
	api = NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}})
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/usage", nil))
	if rec.Code != 404 {
		t.Fatalf("GET /api/v1/usage without a meter = %d", rec.Code)
	}
}
