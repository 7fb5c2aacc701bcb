package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestDependencyDirection keeps the package map of docs/architecture.md
// true: heavy dependencies stay behind the one package that owns them, and
// our own imports point one way. Test files are exempt.
func TestDependencyDirection(t *testing.T) {
	// For each import prefix, the only packages (dirs) that may use it.
	owners := map[string][]string{
		"go.etcd.io/bbolt":              {"engine/store"},
		"github.com/moby/moby":          {"engine"},
		"github.com/NVIDIA/go-nvml":     {"gpu"},
		"github.com/gin-gonic/gin":      {"ui", "cmd/corral"}, // cmd sets its release mode
		"github.com/caddyserver/":       {"proxy", "proxy/certs"},
		"github.com/containerd/errdefs": {"engine"},
		"github.com/prometheus/":        {"proxy/metrics"},
	}
	// For each of our packages, the packages of ours it may import.
	ours := map[string][]string{
		"gpu":             {},
		"engine/store":    {},
		"engine":          {"gpu", "engine/store"},
		"engine/keys":     {"engine/store"},
		"engine/usage":    {"engine/store"},
		"ui":              {"assets", "engine", "engine/keys", "engine/models", "engine/store", "engine/usage", "gpu"},
		"engine/models":   {"engine", "engine/store"},
		"engine/chatui":   {"engine", "engine/store"},
		"assets":          {},
		"proxy/gateway":   {"proxy/scheduler", "proxy/redact"},
		"proxy/frontdoor": {"proxy/redact"},
		"proxy/redact":    {},
		"proxy/metrics":   {},
		"proxy/filter":    {},
		"proxy/certs":     {},
		"proxy/scheduler": {},
	}
	root := filepath.Join("..", "..")
	imports := map[string]map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if imports[rel] == nil {
			imports[rel] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			imports[rel][p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 4 {
		t.Fatalf("found only %d packages; is the walk rooted right?", len(imports))
	}
	for pkg, imps := range imports {
		for imp := range imps {
			for prefix, allowed := range owners {
				if strings.HasPrefix(imp, prefix) && !slices.Contains(allowed, pkg) {
					t.Errorf("%s imports %s; only %v may", pkg, imp, allowed)
				}
			}
			own, ok := strings.CutPrefix(imp, "corral/")
			if !ok {
				continue
			}
			if allowed, ruled := ours[pkg]; ruled && !slices.Contains(allowed, own) {
				t.Errorf("%s imports corral/%s; it may import only %v of ours", pkg, own, allowed)
			}
		}
	}
}
