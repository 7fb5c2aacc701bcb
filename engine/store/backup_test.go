package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func writeFile(t *testing.T, path string, raw []byte) {
	t.Helper()
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupWhileWriting takes backups while usage is written: each one is
// a whole, consistent store, and the last one (after the writes) holds
// every record.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutSettings(map[string]any{"ollama_image": "x:1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(Key{ID: "k1", Name: "alice", Hash: "h1"}); err != nil {
		t.Fatal(err)
	}
	const writers, batches = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				recs := make([]UsageRecord, 10)
				for i := range recs {
					recs[i] = UsageRecord{Time: time.Now(), Key: "k1", Model: fmt.Sprint(w, b, i)}
				}
				if err := s.AddUsage(recs, []UsageDay{{Day: "2026-03-01", Key: "k1", Model: "m", Requests: 10}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	out := t.TempDir()
	for i := range 5 {
		var buf bytes.Buffer
		var told int64
		n, err := s.Backup(&buf, func(size int64) { told = size })
		if err != nil || n != int64(buf.Len()) || told != n {
			t.Fatalf("backup %d: %d bytes (told %d, buffer %d), %v", i, n, told, buf.Len(), err)
		}
		p := filepath.Join(out, fmt.Sprintf("b%d.db", i))
		writeFile(t, p, buf.Bytes())
		info, err := Inspect(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Keys != 1 || info.Settings != 1 || info.ID != s.ID() || info.Schema != SchemaVersion() {
			t.Fatalf("backup %d: %+v", i, info)
		}
		// Consistent: the daily total counts exactly the raw records.
		b, err := OpenReadOnly(mustDir(t, p))
		if err != nil {
			t.Fatal(err)
		}
		var requests int64
		b.UsageDays("", "", func(d UsageDay) error { requests += d.Requests; return nil })
		b.Close()
		if requests != int64(info.UsageRecords) {
			t.Fatalf("backup %d: %d raw records but days count %d", i, info.UsageRecords, requests)
		}
	}
	wg.Wait()
	var buf bytes.Buffer
	if _, err := s.Backup(&buf, nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(out, "last.db")
	writeFile(t, p, buf.Bytes())
	if info, err := Inspect(p); err != nil || info.UsageRecords != writers*batches*10 {
		t.Fatalf("last backup: %+v, %v; want %d records", info, err, writers*batches*10)
	}
	// No temporary file is left beside the store.
	if left, _ := filepath.Glob(filepath.Join(dir, ".backup-*")); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// mustDir puts the file at p alone in a directory as the store, for
// OpenReadOnly.
func mustDir(t *testing.T, p string) string {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), raw)
	return dir
}

func backupOf(t *testing.T, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Backup(&buf, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInspectRefuses(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	good := backupOf(t, s)
	s.Close()
	other := t.TempDir()
	cases := []struct {
		name string
		raw  []byte
		want string
		is   error
	}{
		{"text file", []byte("hello, this is not a database\n"), "is not a corral store", ErrNotStore},
		{"cut off", good[:len(good)-4096], "is cut off", nil},
		{"newer", withSchema(t, good, SchemaVersion()+1), "upgrade corral", ErrNewer},
		{"no schema", withoutMeta(t, good), "has no schema version", ErrNotStore},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(other, strings.ReplaceAll(tc.name, " ", "-"))
			writeFile(t, p, tc.raw)
			_, err := Inspect(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("inspect: %v, want %q", err, tc.want)
			}
			// Restore refuses it, and the store stays as it was.
			before, _ := os.ReadFile(filepath.Join(dir, FileName))
			if _, _, err := Restore(dir, p); err == nil {
				t.Fatal("restore accepted it")
			}
			after, _ := os.ReadFile(filepath.Join(dir, FileName))
			if !bytes.Equal(before, after) {
				t.Fatal("a refused restore changed the store")
			}
			if _, err := os.Stat(filepath.Join(dir, FileName+".bak")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused restore made a .bak: %v", err)
			}
		})
	}
}

// withSchema returns a copy of the store raw with its schema version set.
func withSchema(t *testing.T, raw []byte, v int) []byte {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), raw)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		var buf [8]byte
		buf[7] = byte(v)
		return tx.Bucket(bucketMeta).Put(keySchema, buf[:])
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	out, _ := os.ReadFile(filepath.Join(dir, FileName))
	return out
}

func withoutMeta(t *testing.T, raw []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), raw)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMeta) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	out, _ := os.ReadFile(filepath.Join(dir, FileName))
	return out
}

func TestRestore(t *testing.T) {
	// The backup: a store with a key, a setting and usage.
	src, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src.CreateKey(Key{ID: "k1", Name: "alice", Hash: "h1"})
	src.PutSettings(map[string]any{"ollama_image": "from-backup:1"})
	src.AddUsage([]UsageRecord{{Time: time.Now(), Key: "k1", Model: "m"}}, nil)
	backup := filepath.Join(t.TempDir(), "backup.db")
	writeFile(t, backup, backupOf(t, src))
	srcID := src.ID()
	src.Close()

	t.Run("into an empty data dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new")
		info, bak, err := Restore(dir, backup)
		if err != nil || info.Keys != 1 || info.UsageRecords != 1 || bak != "" {
			t.Fatalf("restore: %+v, %q, %v", info, bak, err)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.ID() != srcID {
			t.Fatalf("ID %s, want the backup's %s", s.ID(), srcID)
		}
		if _, err := os.Stat(filepath.Join(dir, FileName+".bak")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf(".bak without a store before: %v", err)
		}
	})

	t.Run("over a store", func(t *testing.T) {
		dir := t.TempDir()
		cur, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		cur.PutSettings(map[string]any{"ollama_image": "current:1"})
		cur.AdoptOwners("earlier-owner")
		curID := cur.ID()
		// While a corral has it open, restore refuses.
		if _, _, err := Restore(dir, backup); !errors.Is(err, ErrLocked) {
			t.Fatalf("restore while open: %v, want ErrLocked", err)
		}
		cur.Close()
		info, bak, err := Restore(dir, backup)
		if err != nil {
			t.Fatal(err)
		}
		if bak != filepath.Join(dir, FileName+".bak") {
			t.Fatalf("bak = %q", bak)
		}
		if info.ID != curID {
			t.Fatalf("info ID %s, want the replaced store's %s", info.ID, curID)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var image string
		s.Setting("ollama_image", &image)
		adopted, _ := s.AdoptedOwners()
		if image != "from-backup:1" || s.ID() != curID || len(adopted) != 1 || adopted[0] != "earlier-owner" {
			t.Fatalf("restored: image %q, ID %s (want %s), adopted %v", image, s.ID(), curID, adopted)
		}
		if k, err := s.KeyByName("alice"); err != nil || k.ID != "k1" {
			t.Fatalf("key: %+v, %v", k, err)
		}
		s.Close()
		// The replaced store is kept whole.
		old, err := OpenReadOnly(mustDir(t, bak))
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		old.Setting("ollama_image", &image)
		if image != "current:1" || old.ID() != curID {
			t.Fatalf(".bak holds image %q, ID %s", image, old.ID())
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".restore-*")); len(left) > 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
}
