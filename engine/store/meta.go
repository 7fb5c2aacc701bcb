package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta      = []byte("meta")
	keySchema       = []byte("schema_version")
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

func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("store: create meta: %w", err)
		}
		v := 0
		if raw := meta.Get(keySchema); len(raw) == 8 {
			v = int(binary.BigEndian.Uint64(raw))
		}
		if v > len(migrations) {
			return fmt.Errorf("store: schema version %d is newer than this corral understands (%d): upgrade corral", v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("store: migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		return meta.Put(keySchema, buf[:])
	})
}

// Schema reads the stored schema version.
func (s *Store) Schema() (int, error) {
	v := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bucketMeta).Get(keySchema); len(raw) == 8 {
			v = int(binary.BigEndian.Uint64(raw))
		}
		return nil
	})
	return v, err
}
