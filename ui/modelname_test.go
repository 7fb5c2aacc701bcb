package ui

import (
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func TestImportNameRule(t *testing.T) {
	cases := []struct {
		name, err string
	}{
		{"tiny", ""},
		{"tiny:latest", ""},
		{"llama3.2:1b", ""},
		{"qwen2.5:0.5b-instruct-q4_K_M", ""},
		{"myteam/tiny:v2", ""},
		{"hf.co/org/model:Q4_K_M", ""},
		{"localhost:5000/team/m", ""},
		{"  padded:1  ", ""},
		{"", "name is required"},
		{"   ", "name is required"},
		{"bad name", `model name "bad name" is not valid: use NAME or NAMESPACE/NAME`},
		{"-dash", "is not valid"},
		{"tiny:", "is not valid"},
		{"a/b/c/d", "is not valid"},
		{"dot.ns/m", "is not valid"},
		{"tiny:a:b", "is not valid"},
		{"über", "is not valid"},
		{strings.Repeat("m", 81), "is not valid"},
	}
	for _, tc := range cases {
		err := checkImportName(tc.name)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("checkImportName(%q) = %v, want %q", tc.name, err, tc.err)
		}
	}
}

// A bad name is refused before any of the file is read.
func TestImportRefusesABadNameFirst(t *testing.T) {
	api := NewAPI(Deps{Engine: fakeEngine{}, GPUs: fakeGPUs{}, Models: &fakeModels{}})
	req := httptest.NewRequest("POST", "/api/v1/models/import?name=bad+name&file=x.gguf", iotest.ErrReader(errRead))
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `model name \"bad name\" is not valid`) {
		t.Fatalf("import with a bad name = %d %s", rec.Code, rec.Body)
	}
}

var errRead = errorString("the body was read")

type errorString string

func (e errorString) Error() string { return string(e) }
