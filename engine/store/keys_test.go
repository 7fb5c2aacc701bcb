package store

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func testKey(id, name, hash string) Key {
	return Key{ID: id, Name: name, Hash: hash, Prefix: "AbCdEfGh", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestCreateKey(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateKey(testKey("00000001", "alice", "h1")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		k    Key
	}{
		{"duplicate name", testKey("00000002", "alice", "h2")},
		{"duplicate ID", testKey("00000001", "bob", "h2")},
		{"duplicate hash", testKey("00000002", "bob", "h1")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CreateKey(tc.k); !errors.Is(err, ErrExists) {
				t.Fatalf("create: %v, want ErrExists", err)
			}
		})
	}
	t.Run("incomplete", func(t *testing.T) {
		if err := s.CreateKey(Key{ID: "00000003", Name: "carol"}); err == nil || errors.Is(err, ErrExists) {
			t.Fatalf("create without hash: %v", err)
		}
	})
	list, err := s.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "alice" {
		t.Fatalf("a failed create wrote something: %+v", list)
	}
	if _, err := s.KeyByName("bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob: %v, want ErrNotFound", err)
	}
	if _, err := s.KeyByHash("h2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("h2: %v, want ErrNotFound", err)
	}
}

func TestPutKeyKeepsIndexes(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := testKey("0000000a", "alice", "ha"), testKey("0000000b", "bob", "hb")
	for _, k := range []Key{a, b} {
		if err := s.PutKey(k); err != nil {
			t.Fatal(err)
		}
	}
	a.Name, a.Hash, a.RevokedAt = "alice2", "ha2", time.Now().UTC()
	if err := s.PutKey(a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByName("alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old name still indexed: %v", err)
	}
	if _, err := s.KeyByHash("ha"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old hash still indexed: %v", err)
	}
	got, err := s.KeyByHash("ha2")
	if err != nil || got.Name != "alice2" || got.RevokedAt.IsZero() {
		t.Fatalf("by new hash: %+v, %v", got, err)
	}
	b.Name = "alice2"
	if err := s.PutKey(b); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto a taken name: %v, want ErrExists", err)
	}
}

func TestKeysSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := testKey("0000000a", "ci@build.example", "ha")
	k.Note = "CI runner"
	k.ExpiresAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	k.AllowedModels = []string{"llama3.2", "qwen3:8b"}
	if err := s.CreateKey(k); err != nil {
		t.Fatal(err)
	}
	used := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	if err := s.TouchKeys(map[string]time.Time{"0000000a": used, "gone": used}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchKeys(map[string]time.Time{"0000000a": used.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.KeyByName("ci@build.example")
	if err != nil {
		t.Fatal(err)
	}
	want := k
	want.LastUsed = used
	if got.ID != want.ID || got.Hash != want.Hash || got.Note != want.Note || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!got.LastUsed.Equal(want.LastUsed) || !got.RevokedAt.IsZero() || !slices.Equal(got.AllowedModels, want.AllowedModels) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
	}
}

// TestKeyLimitsDecode reads a record written before keys had queue
// settings, and checks that a key without them is written as before.
func TestKeyLimitsDecode(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := `{"id":"0000000a","name":"alice","hash":"ha","prefix":"AbCdEfGh","created":"2025-01-02T03:04:05Z",` +
		`"limits":{"requests_per_minute":60,"tokens_per_minute":0,"tokens_per_day":1000,"tokens_per_month":0}}`
	err = s.db.Update(func(tx *bolt.Tx) error {
		tx.Bucket(bucketKeys).Put([]byte("0000000a"), []byte(old))
		tx.Bucket(bucketKeyNames).Put([]byte("alice"), []byte("0000000a"))
		return tx.Bucket(bucketKeyHashes).Put([]byte("ha"), []byte("0000000a"))
	})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.KeyByName("alice")
	if err != nil || k.Limits != (Limits{RequestsPerMinute: 60, TokensPerDay: 1000}) {
		t.Fatalf("old record = %+v, %v", k, err)
	}
	if err := s.PutKey(k); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	s.db.View(func(tx *bolt.Tx) error {
		raw = slices.Clone(tx.Bucket(bucketKeys).Get([]byte("0000000a")))
		return nil
	})
	if string(raw) != old {
		t.Fatalf("rewritten as\n%s\nwant\n%s", raw, old)
	}

	k.Limits = Limits{Weight: 4, Batch: true, MaxQueue: 10, MaxWaitSeconds: 30}
	if err := s.PutKey(k); err != nil {
		t.Fatal(err)
	}
	if got, err := s.KeyByName("alice"); err != nil || got.Limits != k.Limits {
		t.Fatalf("queue settings = %+v, %v; want %+v", got.Limits, err, k.Limits)
	}
}

// TestMigrateFromSchema1 opens a database written by a corral that knew
// only schema 1 and checks it gains the key buckets and keeps its data.
func TestMigrateFromSchema1(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], 1)
		meta.Put(keySchema, v[:])
		settings, _ := tx.CreateBucket(bucketSettings)
		settings.Put([]byte("ollama_image"), []byte(`"x:1"`))
		_, err := tx.CreateBucket(bucketInstances)
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Schema(); err != nil || v != SchemaVersion() || v < 2 {
		t.Fatalf("schema = %d, %v; want %d", v, err, SchemaVersion())
	}
	var image string
	if err := s.Setting("ollama_image", &image); err != nil || image != "x:1" {
		t.Fatalf("setting after migration = %q, %v", image, err)
	}
	if list, err := s.Keys(); err != nil || len(list) != 0 {
		t.Fatalf("keys after migration = %v, %v", list, err)
	}
	if err := s.CreateKey(testKey("0000000a", "alice", "ha")); err != nil {
		t.Fatal(err)
	}
}
