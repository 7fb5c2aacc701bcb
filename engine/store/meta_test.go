package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeAtVersion writes a store as corral left it at schema version v:
// the buckets of migrations 0..v-1, the version in meta (none at 0, a file
// no corral had opened yet), and a record in every bucket that version
// had, in that version's layout.
func writeAtVersion(t *testing.T, dir string, v int) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *bolt.Tx) error {
		for i := range v {
			if err := migrations[i](tx); err != nil {
				return err
			}
		}
		if v == 0 {
			return nil
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		if err := meta.Put(keySchema, buf[:]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSettings).Put([]byte("ollama_image"), []byte(`"ollama/ollama:0.17.4"`)); err != nil {
			return err
		}
		in, _ := json.Marshal(Instance{Name: "corral-ollama-0", GPU: "cpu", Image: "ollama/ollama:0.17.4"})
		if err := tx.Bucket(bucketInstances).Put([]byte("corral-ollama-0"), in); err != nil {
			return err
		}
		if v >= 2 {
			if err := putKey(tx, Key{ID: "k1", Name: "alice", Hash: "aa11", Created: at}); err != nil {
				return err
			}
		}
		if v >= 3 {
			rec, _ := json.Marshal(UsageRecord{Time: at, Key: "k1", Model: "m", PromptTokens: 3, Status: 200})
			if err := tx.Bucket(bucketUsageRaw).Put(rawKey(at, 1), rec); err != nil {
				return err
			}
		}
		if v >= 4 {
			val := append(make([]byte, 8), "cert"...)
			binary.BigEndian.PutUint64(val, uint64(at.UnixNano()))
			if err := tx.Bucket(bucketCerts).Put([]byte("certificates/x.crt"), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFromEveryVersion opens a store of every earlier schema
// version with today's code: it ends at the current version, with an ID,
// and what it held is still there.
func TestMigrateFromEveryVersion(t *testing.T) {
	for v := range SchemaVersion() {
		t.Run(fmt.Sprintf("from %d", v), func(t *testing.T) {
			dir := t.TempDir()
			writeAtVersion(t, dir, v)
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got, err := s.Schema(); err != nil || got != SchemaVersion() {
				t.Fatalf("schema = %d, %v; want %d", got, err, SchemaVersion())
			}
			if len(s.ID()) != 32 {
				t.Fatalf("store ID = %q, want 32 hex digits", s.ID())
			}
			// Every bucket of the current layout is usable.
			if _, err := s.Keys(); err != nil {
				t.Fatal(err)
			}
			if err := s.UsageRecords(time.Time{}, time.Now(), func(UsageRecord) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CertKeys(""); err != nil {
				t.Fatal(err)
			}
			if v >= 1 {
				var image string
				if err := s.Setting("ollama_image", &image); err != nil || image != "ollama/ollama:0.17.4" {
					t.Fatalf("setting = %q, %v", image, err)
				}
				if in, err := s.Instances(); err != nil || len(in) != 1 {
					t.Fatalf("instances = %v, %v", in, err)
				}
			}
			if v >= 2 {
				if k, err := s.KeyByName("alice"); err != nil || k.ID != "k1" {
					t.Fatalf("key = %+v, %v", k, err)
				}
			}
			if v >= 3 {
				n := 0
				s.UsageRecords(time.Time{}, time.Now(), func(UsageRecord) error { n++; return nil })
				if n != 1 {
					t.Fatalf("usage records = %d, want 1", n)
				}
			}
			if v >= 4 {
				if val, _, err := s.CertGet("certificates/x.crt"); err != nil || string(val) != "cert" {
					t.Fatalf("cert = %q, %v", val, err)
				}
			}
		})
	}
}

// TestMigrateLastRelease opens a store that the last release wrote
// (testdata/schema4.db, made by testdata/schema4_gen.go at 5c2444a).
func TestMigrateLastRelease(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "schema4.db"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(filepath.Join(dir, FileName))
	if err != nil || info.Schema != 4 || info.ID != "" || info.Keys != 2 || info.UsageRecords != 2 || info.UsageDays != 2 || info.Certs != 2 {
		t.Fatalf("inspect = %+v, %v", info, err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	if v, _ := s.Schema(); v != SchemaVersion() || id == "" {
		t.Fatalf("schema %d, ID %q", v, id)
	}
	var image string
	var cpus int
	var weights map[string]int
	if err := s.Setting("ollama_image", &image); err != nil || image != "ollama/ollama:0.17.4" {
		t.Fatalf("image = %q, %v", image, err)
	}
	if err := s.Setting("cpu_instances", &cpus); err != nil || cpus != 2 {
		t.Fatalf("cpu_instances = %d, %v", cpus, err)
	}
	if err := s.Setting("weights", &weights); err != nil || weights["corral-ollama-1"] != 3 {
		t.Fatalf("weights = %v, %v", weights, err)
	}
	if k, err := s.KeyByHash("aa11"); err != nil || k.Name != "alice" || k.Limits.RequestsPerMinute != 60 || k.AllowedModels[0] != "llama3.2" {
		t.Fatalf("key = %+v, %v", k, err)
	}
	if k, err := s.KeyByName("corral-chat-ui"); err != nil || !k.Internal {
		t.Fatalf("chat UI key = %+v, %v", k, err)
	}
	var users []string
	s.UsageRecords(time.Time{}, time.Now(), func(r UsageRecord) error { users = append(users, r.User); return nil })
	if len(users) != 2 || users[1] != "bob@example.com" {
		t.Fatalf("usage users = %q", users)
	}
	if v, _, err := s.CertGet("acme/accounts/you@example.com.json"); err != nil || string(v) != `{"status":"valid"}` {
		t.Fatalf("account = %q, %v", v, err)
	}
	s.Close()
	// The ID is made once.
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ID() != id {
		t.Fatalf("ID changed on reopen: %s → %s", id, s.ID())
	}
}

func TestNewerSchemaRefusedNamesBoth(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	newer := SchemaVersion() + 1
	err = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists(bucketMeta)
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(newer))
		return b.Put(keySchema, buf[:])
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir)
	if !errors.Is(err, ErrNewer) {
		t.Fatalf("open: %v, want ErrNewer", err)
	}
	for _, want := range []string{fmt.Sprintf("schema version %d", newer), fmt.Sprintf("up to version %d", SchemaVersion()), "upgrade corral"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestAdoptedOwners(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.AdoptedOwners(); err != nil || len(got) != 0 {
		t.Fatalf("fresh store adopted %v, %v", got, err)
	}
	if err := s.AdoptOwners("a", "b", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.AdoptOwners("b", "c"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.AdoptedOwners(); err != nil || strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("adopted = %v, %v", got, err)
	}
	if s.ID() == "" {
		t.Fatal("read-only open lost the ID")
	}
}
