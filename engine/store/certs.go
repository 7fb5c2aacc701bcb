package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"time"

	bolt "go.etcd.io/bbolt"
)

// errCertMissing is the miss of a cert key. It matches ErrNotFound, like
// every other miss here, and fs.ErrNotExist as well: the TLS storage
// adapter may not import this package to compare with ErrNotFound, and
// the contract it fulfils speaks of fs.ErrNotExist.
var errCertMissing error = certMissing{}

type certMissing struct{}

func (certMissing) Error() string { return ErrNotFound.Error() }

func (certMissing) Is(target error) bool { return target == ErrNotFound || target == fs.ErrNotExist }

// CertPut stores value at the slash-separated key path, stamped with the
// current time, replacing any value there.
func (s *Store) CertPut(key string, value []byte) error {
	if key == "" {
		return errors.New("store: put cert: empty key")
	}
	raw := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(raw, uint64(time.Now().UnixNano()))
	copy(raw[8:], value)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCerts).Put([]byte(key), raw)
	})
	if err != nil {
		return fmt.Errorf("store: put cert %s: %w", key, err)
	}
	return nil
}

// CertGet returns the value at key and when it was written. A missing key
// is ErrNotFound (which also matches fs.ErrNotExist).
func (s *Store) CertGet(key string) ([]byte, time.Time, error) {
	var (
		value []byte
		mod   time.Time
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketCerts).Get([]byte(key))
		if raw == nil {
			return errCertMissing
		}
		if len(raw) < 8 {
			return fmt.Errorf("record of %d bytes is too short", len(raw))
		}
		mod = time.Unix(0, int64(binary.BigEndian.Uint64(raw)))
		// bbolt's bytes live only as long as the transaction.
		value = bytes.Clone(raw[8:])
		if value == nil {
			value = []byte{}
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("store: get cert %s: %w", key, err)
	}
	return value, mod, nil
}

// CertDelete deletes key and every key under key+"/", as removing a file
// or a whole directory would. Nothing there is not an error.
func (s *Store) CertDelete(key string) error {
	// An empty key would name the root and wipe every certificate and
	// account; no caller means that, so it is refused.
	if key == "" {
		return errors.New("store: delete cert: empty key")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCerts)
		// Collected first: deleting under a live cursor can skip keys.
		for _, k := range certKeysUnder(b, key) {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete cert %s: %w", key, err)
	}
	return nil
}

// CertKeys lists, sorted, the keys equal to prefix or under prefix+"/";
// an empty prefix lists them all. Components match whole, so "a" holds
// "a/b" but not "ab/c".
func (s *Store) CertKeys(prefix string) ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		out = certKeysUnder(tx.Bucket(bucketCerts), prefix)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list certs %s: %w", prefix, err)
	}
	return out, nil
}

func certKeysUnder(b *bolt.Bucket, prefix string) []string {
	var out []string
	c := b.Cursor()
	if prefix == "" {
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			out = append(out, string(k))
		}
		return out
	}
	if b.Get([]byte(prefix)) != nil {
		out = append(out, prefix)
	}
	// prefix sorts before prefix+"/"..., so out stays sorted.
	dir := []byte(prefix + "/")
	for k, _ := c.Seek(dir); k != nil && bytes.HasPrefix(k, dir); k, _ = c.Next() {
		out = append(out, string(k))
	}
	return out
}

// CertTryLock takes the lock name for owner until now+ttl, in one
// transaction, when it is free, expired, or already owner's (which
// refreshes it). It reports whether owner holds it now. The caller's
// clock decides expiry so that a holder that died is outlived by its
// lock only for ttl, and so that tests can age a lock.
func (s *Store) CertTryLock(name, owner string, ttl time.Duration, now time.Time) (bool, error) {
	if name == "" || owner == "" || ttl <= 0 {
		return false, fmt.Errorf("store: lock cert %q: needs a name, an owner and a positive ttl (owner %q, ttl %s)", name, owner, ttl)
	}
	took := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCertLocks)
		// A record too short to read is treated as expired: kept, it
		// would block the lock forever.
		if raw := b.Get([]byte(name)); len(raw) >= 8 {
			expiry := time.Unix(0, int64(binary.BigEndian.Uint64(raw)))
			if string(raw[8:]) != owner && now.Before(expiry) {
				return nil
			}
		}
		raw := make([]byte, 8+len(owner))
		binary.BigEndian.PutUint64(raw, uint64(now.Add(ttl).UnixNano()))
		copy(raw[8:], owner)
		if err := b.Put([]byte(name), raw); err != nil {
			return err
		}
		took = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: lock cert %s: %w", name, err)
	}
	return took, nil
}

// CertUnlock removes the lock name if owner holds it. A lock that is gone
// or was taken over after expiring is left as it is, without error: owner
// has nothing left to release.
func (s *Store) CertUnlock(name, owner string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCertLocks)
		raw := b.Get([]byte(name))
		if len(raw) < 8 || string(raw[8:]) != owner {
			return nil
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("store: unlock cert %s: %w", name, err)
	}
	return nil
}
