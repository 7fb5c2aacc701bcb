package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corral/engine/store"
	"corral/ui"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := newApp(&out, &out).run(context.Background(), args)
	return out.String(), err
}

// filledStore writes a key, a setting and a usage record into st.
func fill(t *testing.T, st *store.Store, image string) {
	t.Helper()
	if err := st.PutSettings(map[string]any{"ollama_image": image}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateKey(store.Key{ID: "k1", Name: "alice", Hash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddUsage([]store.UsageRecord{{Time: time.Now(), Key: "k1", Model: "m"}}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestBackupRestoreStopped: with no corral running the CLI reads and
// writes the store itself; restore keeps the old store and refuses what
// is not a whole corral store, changing nothing.
func TestBackupRestoreStopped(t *testing.T) {
	dataDir := t.TempDir()
	st, err := store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, st, "from-backup:1")
	id := st.ID()
	st.Close()

	file := filepath.Join(t.TempDir(), "corral.backup")
	out, err := runCLI(t, "backup", "--data-dir", dataDir, file)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if !strings.Contains(out, "corral was not running") || !strings.Contains(out, "1 keys, 1 usage records") {
		t.Fatalf("backup said:\n%s", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v (want mode 0600: it holds secrets)", fi, err)
	}

	// Into a data dir with a store of its own: the old one is kept.
	other := t.TempDir()
	st, err = store.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	st.PutSettings(map[string]any{"ollama_image": "current:1"})
	otherID := st.ID()
	// While it is open (corral running), restore refuses.
	out, err = runCLI(t, "restore", "--data-dir", other, file)
	if err == nil || !strings.Contains(err.Error(), "corral is running with data dir "+other+": stop it first") {
		t.Fatalf("restore while running: %v\n%s", err, out)
	}
	st.Close()
	garbage := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(garbage, []byte("not a backup"), 0o600)
	if _, err := runCLI(t, "restore", "--data-dir", other, garbage); err == nil || !strings.Contains(err.Error(), "not a corral store") || !strings.Contains(err.Error(), "is unchanged") {
		t.Fatalf("restore of a text file: %v", err)
	}
	out, err = runCLI(t, "restore", "--data-dir", other, file)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if !strings.Contains(out, "the store it replaced is "+filepath.Join(other, "corral.db.bak")) {
		t.Fatalf("restore said:\n%s", out)
	}
	st, err = store.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var image string
	st.Setting("ollama_image", &image)
	if image != "from-backup:1" || st.ID() != otherID || st.ID() == id {
		t.Fatalf("restored image %q, ID %s (want the data dir's %s)", image, st.ID(), otherID)
	}
	if _, err := st.KeyByName("alice"); err != nil {
		t.Fatal(err)
	}

	// Mistakes say what to do.
	if _, err := runCLI(t, "backup", "--data-dir", filepath.Join(t.TempDir(), "none"), file); err == nil || !strings.Contains(err.Error(), "no corral store in") {
		t.Fatalf("backup of no store: %v", err)
	}
	if _, err := runCLI(t, "backup", "--data-dir", dataDir); err == nil || !strings.Contains(err.Error(), "name the file") {
		t.Fatalf("backup without FILE: %v", err)
	}
}

// TestBackupFromDaemon: while corral serves, the copy comes over the
// control socket.
func TestBackupFromDaemon(t *testing.T) {
	var live *store.Store
	dataDir := serveAPI(t, func(st *store.Store) ui.Deps {
		fill(t, st, "served:1")
		live = st
		return ui.Deps{Backup: st}
	})
	file := filepath.Join(t.TempDir(), "b.db")
	out, err := runCLI(t, "backup", "--data-dir", dataDir, file)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if !strings.Contains(out, "while corral served") {
		t.Fatalf("backup said:\n%s", out)
	}
	info, err := store.Inspect(file)
	if err != nil || info.ID != live.ID() || info.Keys != 1 || info.UsageRecords != 1 {
		t.Fatalf("backup holds %+v, %v", info, err)
	}
	// To standard output.
	var buf bytes.Buffer
	if err := newApp(&buf, os.Stderr).run(context.Background(), []string{"backup", "--data-dir", dataDir, "-"}); err != nil {
		t.Fatal(err)
	}
	piped := filepath.Join(t.TempDir(), "piped.db")
	os.WriteFile(piped, buf.Bytes(), 0o600)
	if info, err := store.Inspect(piped); err != nil || info.Keys != 1 {
		t.Fatalf("backup to standard output holds %+v, %v", info, err)
	}
}
