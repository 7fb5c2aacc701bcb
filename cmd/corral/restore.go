package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"corral/engine/store"
)

// restoreCmd puts a backup in place of the store. corral must be stopped:
// the store's lock says whether it is.
func (a *app) restoreCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("restore", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "corral's data dir")
	file, err := oneArg(fs, args, "corral restore FILE: name the backup to restore (a file corral backup wrote)")
	if err != nil {
		return helpOK(err)
	}
	info, bak, err := store.Restore(*dataDir, file)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("corral is running with data dir %s: stop it first (systemctl stop corral, or Ctrl-C where it runs), then run corral restore again; nothing was changed", *dataDir)
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w; the store in %s is unchanged", file, err, *dataDir)
	}
	path := filepath.Join(*dataDir, store.FileName)
	fmt.Fprintf(a.stdout, "restored %s to %s: %s\n", file, path, describe(info))
	if bak != "" {
		fmt.Fprintf(a.stdout, "the store it replaced is %s\n", bak)
	}
	if info.Schema < store.SchemaVersion() {
		fmt.Fprintf(a.stdout, "corral serve upgrades it from schema %d to %d when it starts\n", info.Schema, store.SchemaVersion())
	}
	fmt.Fprintln(a.stdout, "start corral again: corral serve (or systemctl start corral)")
	return nil
}
