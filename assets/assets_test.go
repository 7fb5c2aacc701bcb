package assets

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestNothingFromTheNetwork: the pages must work on a server with no
// internet, so no file may point at another host (a CDN, a web font).
func TestNothingFromTheNetwork(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	n := 0
	err := fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		raw, err := fs.ReadFile(FS, path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(raw), "\n") {
			// Comments in CSS and JS may name things; code may not fetch them.
			if s := strings.TrimSpace(line); strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/*") {
				continue
			}
			if m := external.FindString(line); m != "" {
				t.Errorf("%s refers to another host: %s", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Fatalf("only %d embedded files; is the embed pattern right?", n)
	}
}

func TestLayout(t *testing.T) {
	for _, dir := range []string{"templates/layout", "templates/pages", "templates/partials", "static"} {
		entries, err := fs.ReadDir(FS, dir)
		if err != nil || len(entries) == 0 {
			t.Errorf("%s: %v, %d files", dir, err, len(entries))
		}
	}
}
