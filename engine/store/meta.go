package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta      = []byte("meta")
	keySchema       = []byte("schema_version")
	keyStoreID      = []byte("store_id")       // random hex, made once: the store's identity
	keyAdopted      = []byte("adopted_owners") // JSON list of store IDs whose containers this store took over
	bucketSettings  = []byte("settings")
	bucketInstances = []byte("instances")
	bucketKeys      = []byte("keys")       // key ID → Key (JSON)
	bucketKeyNames  = []byte("key_names")  // key name → key ID
	bucketKeyHashes = []byte("key_hashes") // secret's hex SHA-256 → key ID
	bucketUsageRaw  = []byte("usage_raw")  // unix nanos and sequence, big-endian → UsageRecord (JSON)
	bucketUsageDays = []byte("usage_days") // day NUL key NUL model NUL user → UsageDay (JSON)
	bucketCerts     = []byte("certs")      // slash-separated key path → unix nanos, big-endian, then the value
	bucketCertLocks = []byte("cert_locks") // lock name → expiry in unix nanos, big-endian, then the owner
)

// migrations bring the schema from version i to i+1; append, never edit.
// A database newer than this binary is refused rather than guessed at.
// Each one is tested from every earlier version (meta_test.go), and from a
// store the last release wrote (testdata/schema4.db).
//
// Keys added to the meta bucket that an older binary can ignore (the store
// ID, the adopted owners) are no schema change: they need no migration,
// and an older corral still opens the store, so going back a release keeps
// working.
var migrations = []func(tx *bolt.Tx) error{
	// 0 → 1: the first layout.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSettings, bucketInstances} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 1 → 2: gateway API keys, with their name and hash indexes.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketKeyNames, bucketKeyHashes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 2 → 3: gateway usage, raw records and daily aggregates.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUsageRaw, bucketUsageDays} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 3 → 4: TLS certificates, keys and ACME accounts, and their locks.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketCerts, bucketCertLocks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
}

// SchemaVersion is the schema this binary writes.
func SchemaVersion() int { return len(migrations) }

// ErrNewer matches the error of opening a database that a newer corral
// wrote (a *NewerError).
var ErrNewer = errors.New("written by a newer corral")

// NewerError is a database whose schema is newer than this binary's.
type NewerError struct {
	Path      string
	Version   int // the database's
	Supported int // the newest this binary reads
}

func (e *NewerError) Error() string {
	return fmt.Sprintf("store: %s was written by a newer corral (schema version %d; this corral reads up to version %d): upgrade corral to that release or a later one", e.Path, e.Version, e.Supported)
}

func (e *NewerError) Is(target error) bool { return target == ErrNewer }

func newerError(path string, v int) error {
	return &NewerError{Path: path, Version: v, Supported: len(migrations)}
}

// schemaOf reads the schema version in meta; 0 when there is none.
func schemaOf(meta *bolt.Bucket) int {
	if meta == nil {
		return 0
	}
	if raw := meta.Get(keySchema); len(raw) == 8 {
		return int(binary.BigEndian.Uint64(raw))
	}
	return 0
}

func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("store: create meta: %w", err)
		}
		v := schemaOf(meta)
		if v > len(migrations) {
			return newerError(s.db.Path(), v)
		}
		for ; v < len(migrations); v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("store: migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		if err := meta.Put(keySchema, buf[:]); err != nil {
			return err
		}
		if id := meta.Get(keyStoreID); len(id) > 0 {
			s.id = string(id)
			return nil
		}
		b := make([]byte, 16)
		rand.Read(b)
		s.id = hex.EncodeToString(b)
		return meta.Put(keyStoreID, []byte(s.id))
	})
}

// Schema reads the stored schema version.
func (s *Store) Schema() (int, error) {
	v := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		v = schemaOf(tx.Bucket(bucketMeta))
		return nil
	})
	return v, err
}

// ID is the store's identity: random, made when the store was first
// opened, kept by restores into the same data dir. It marks what this
// corral owns on the Docker engine. Empty for a store opened read-only
// before any corral gave it one.
func (s *Store) ID() string { return s.id }

// AdoptedOwners are the store IDs whose containers this store took over
// (corral serve --take-over): they are its own now.
func (s *Store) AdoptedOwners() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = adoptedOf(tx.Bucket(bucketMeta))
		return err
	})
	return out, err
}

// AdoptOwners adds store IDs to AdoptedOwners.
func (s *Store) AdoptOwners(ids ...string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return addAdopted(tx.Bucket(bucketMeta), ids)
	})
}

func adoptedOf(meta *bolt.Bucket) ([]string, error) {
	raw := meta.Get(keyAdopted)
	if raw == nil {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("store: decode adopted owners: %w", err)
	}
	return out, nil
}

func addAdopted(meta *bolt.Bucket, ids []string) error {
	have, err := adoptedOf(meta)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id != "" && !slices.Contains(have, id) {
			have = append(have, id)
		}
	}
	raw, err := json.Marshal(have)
	if err != nil {
		return err
	}
	return meta.Put(keyAdopted, raw)
}
