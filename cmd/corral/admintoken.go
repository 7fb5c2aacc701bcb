package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// adminTokenCmd prints the admin token, or with --rotate makes the
// running corral replace it and end every admin session.
func (a *app) adminTokenCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("admin-token", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	rotate := fs.Bool("rotate", false, "replace the token with a new one; every signed-in admin is signed out")
	if _, err := fs.parseArgs(args, 0); err != nil {
		return helpOK(err)
	}
	if *rotate {
		var out struct {
			Token string `json:"token"`
		}
		if err := newDaemon(*dataDir).do(ctx, http.MethodPost, "/api/v1/admin-token/rotate", nil, &out); err != nil {
			return fmt.Errorf("admin-token --rotate: %w", err)
		}
		fmt.Fprintln(a.stdout, out.Token)
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(*dataDir, "admin-token"))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("admin-token: no token in %s yet: corral serve makes one at its first start (unless given --admin-token)", *dataDir)
	}
	if err != nil {
		return fmt.Errorf("admin-token: %w", err)
	}
	fmt.Fprintln(a.stdout, strings.TrimSpace(string(raw)))
	return nil
}

// adminLinkCmd prints a one-time sign-in link for the admin pages.
func (a *app) adminLinkCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("admin-link", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	if _, err := fs.parseArgs(args, 0); err != nil {
		return helpOK(err)
	}
	var out struct {
		Link string `json:"link"`
	}
	if err := newDaemon(*dataDir).do(ctx, http.MethodPost, "/api/v1/admin-link", nil, &out); err != nil {
		return fmt.Errorf("admin-link: %w", err)
	}
	fmt.Fprintln(a.stdout, out.Link)
	fmt.Fprintln(a.stderr, "Open it in a browser: it signs in once, within 15 minutes.")
	return nil
}
