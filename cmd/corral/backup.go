package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"corral/engine/store"
)

// backupCmd copies the store to a file: from the daemon over the control
// socket while corral serves (it holds the store's lock), else from the
// store itself. The copy is checked before it takes the file's name, so a
// cut-off or damaged copy never looks like a backup.
func (a *app) backupCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("backup", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "corral's data dir")
	file, err := oneArg(fs, args, "corral backup FILE: name the file to write the backup to (- for standard output)")
	if err != nil {
		return helpOK(err)
	}
	if file == "-" {
		_, err := a.copyStore(ctx, *dataDir, a.stdout)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".corral-backup-*") // 0600: a backup holds secrets
	if err != nil {
		return fmt.Errorf("backup: %w: pick a FILE in a directory you can write", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	how, err := a.copyStore(ctx, *dataDir, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	info, err := store.Inspect(tmp.Name())
	if err != nil {
		return fmt.Errorf("backup: the copy is not whole, so %s was not written: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(a.stdout, "backed up the store of %s (%s) to %s: %s\n", *dataDir, how, file, describe(info))
	fmt.Fprintf(a.stdout, "it holds secrets (certificate keys, the chat UI's secrets): keep it as private as the data dir; corral restore %s puts it back\n", file)
	return nil
}

// copyStore writes a consistent copy of the store to w and says where it
// came from.
func (a *app) copyStore(ctx context.Context, dataDir string, w io.Writer) (string, error) {
	resp, err := newDaemon(dataDir).send(ctx, http.MethodGet, "/api/v1/backup", nil)
	if err == nil {
		defer resp.Body.Close()
		n, err := io.Copy(w, resp.Body)
		if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return "", fmt.Errorf("read the backup from corral: %w", err)
		}
		return "while corral served", nil
	}
	if err != nil && strings.HasPrefix(err.Error(), "no such endpoint") {
		return "", fmt.Errorf("the running corral is older than this one and cannot hand out a backup: restart it with this binary, or stop it and run corral backup again")
	}
	if !errors.Is(err, errNotRunning) {
		return "", err
	}
	st, err := store.OpenReadOnly(dataDir)
	if errors.Is(err, store.ErrLocked) {
		return "", fmt.Errorf("corral has the store in %s open but its control socket %s does not answer: wait for it to finish starting, or stop it and run corral backup again", dataDir, socketPath(dataDir))
	}
	if err != nil {
		return "", fmt.Errorf("%w: pass the --data-dir that corral serve uses", err)
	}
	defer st.Close()
	if _, err := st.Backup(w, nil); err != nil {
		return "", err
	}
	return "corral was not running", nil
}

// describe says what a store holds, in one line.
func describe(info store.Info) string {
	return fmt.Sprintf("schema %d, %d keys, %d usage records (%d daily totals), %d settings, %d certificate entries",
		info.Schema, info.Keys, info.UsageRecords, info.UsageDays, info.Settings, info.Certs)
}
