// Package store keeps all of corral's state in one bbolt file: settings,
// desired instances and, later, keys, usage and certificates. Each bucket
// has one owning file in this package; nothing outside it imports bbolt.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the database file inside the data dir.
const FileName = "corral.db"

// lockTimeout bounds how long Open waits for another process's lock: a
// second corral on the same data dir must fail at once, never hang.
const lockTimeout = 500 * time.Millisecond

// ErrLocked means another process holds the database.
var ErrLocked = errors.New("database is locked by another process")

// ErrNotFound is returned when a key has no value.
var ErrNotFound = errors.New("not found")

// Store is the open database.
type Store struct {
	db *bolt.DB
	id string
}

// Open opens (creating if needed) the database in dir and migrates it to
// the current schema.
func Open(dir string) (*Store, error) {
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// OpenReadOnly opens the database in dir without changing it: no
// migration, no lock against other readers. It fails with ErrLocked while
// a corral has it open for writing.
func OpenReadOnly(dir string) (*Store, error) {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: no corral store in %s: %w", dir, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db}
	err = db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			s.id = string(meta.Get(keyStoreID))
		}
		return nil
	})
	return s, err
}

// Close releases the database and its lock.
func (s *Store) Close() error {
	return s.db.Close()
}

// Path is the database file's path.
func (s *Store) Path() string {
	return s.db.Path()
}

// CheckWritable reports a clear error if dir cannot hold the database,
// before anything is opened.
func CheckWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
