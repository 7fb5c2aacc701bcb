package ui

import (
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"

	"corral/assets"
)

func TestLoadPages(t *testing.T) {
	if _, err := loadPages(assets.FS, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("the embedded assets: %v", err)
	}
	layout := &fstest.MapFile{Data: []byte(`{{define "base"}}<title>{{.Title}}</title>{{template "content" .}}{{end}}`)}
	partial := &fstest.MapFile{Data: []byte(`{{define "p"}}{{end}}`)}
	page := &fstest.MapFile{Data: []byte(`{{define "content"}}hi{{end}}`)}
	cases := []struct {
		name string
		fs   fstest.MapFS
		err  string
	}{
		{"a page without its template", fstest.MapFS{"templates/layout/base.html": layout, "templates/partials/p.html": partial, "templates/pages/login.html": page}, "parse page models"},
		{"a template without its page", fstest.MapFS{"templates/layout/base.html": layout, "templates/partials/p.html": partial, "templates/pages/login.html": page,
			"templates/pages/models.html": page, "templates/pages/stray.html": page}, "templates/pages/stray.html belongs to no page"},
		{"a page with no content", fstest.MapFS{"templates/layout/base.html": layout, "templates/partials/p.html": partial, "templates/pages/login.html": page,
			"templates/pages/models.html": &fstest.MapFile{Data: []byte(`{{define "other"}}{{end}}`)}}, "page models defines no content"},
		{"a template that does not parse", fstest.MapFS{"templates/layout/base.html": &fstest.MapFile{Data: []byte(`{{define "base"}}{{.Title`)}}, "parse layout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadPages(tc.fs, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}
