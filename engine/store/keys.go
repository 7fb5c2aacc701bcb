package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrExists is returned when a create would take a name, ID or hash that
// another record holds.
var ErrExists = errors.New("already exists")

// Key is one gateway API key as stored. The secret itself is never
// stored: Hash is the hex SHA-256 of it. The engine/keys package owns the
// meaning; the store keeps the record and its name and hash indexes.
type Key struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Hash          string    `json:"hash"`
	Prefix        string    `json:"prefix"` // first characters of the secret after "crl_", for display
	Note          string    `json:"note,omitempty"`
	Created       time.Time `json:"created"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	LastUsed      time.Time `json:"last_used,omitzero"`
	AllowedModels []string  `json:"allowed_models,omitempty"` // empty: all models
	Limits        Limits    `json:"limits,omitzero"`
	Internal      bool      `json:"internal,omitempty"` // made by corral itself (the chat UI's key)
}

// Limits cap what one key may use, 0 meaning unlimited, and give its
// place in the gateway's queue, 0 meaning the default. engine/keys sets
// them; engine/usage enforces the caps and the gateway (through
// cmd/corral/wire) the queue. The queue fields came later: records
// without them decode to the defaults.
type Limits struct {
	RequestsPerMinute int64 `json:"requests_per_minute"`
	TokensPerMinute   int64 `json:"tokens_per_minute"`
	TokensPerDay      int64 `json:"tokens_per_day"`
	TokensPerMonth    int64 `json:"tokens_per_month"`

	Weight         int64 `json:"weight,omitempty"`           // share of busy instances against other keys; 0 counts as 1
	Batch          bool  `json:"batch,omitempty"`            // waits behind every interactive request
	MaxQueue       int64 `json:"max_queue,omitempty"`        // requests it may have waiting; 0: the gateway's
	MaxWaitSeconds int64 `json:"max_wait_seconds,omitempty"` // longest wait in the queue; 0: the gateway's
}

// Keys lists every key, revoked ones included, in ID order.
func (s *Store) Keys() ([]Key, error) {
	var out []Key
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(id, raw []byte) error {
			k, err := decodeKey(id, raw)
			if err != nil {
				return err
			}
			out = append(out, k)
			return nil
		})
	})
	return out, err
}

// KeyByName returns the key called name, or ErrNotFound.
func (s *Store) KeyByName(name string) (Key, error) {
	return s.keyBy(bucketKeyNames, name)
}

// KeyByHash returns the key whose secret hashes to hash, or ErrNotFound.
func (s *Store) KeyByHash(hash string) (Key, error) {
	return s.keyBy(bucketKeyHashes, hash)
}

func (s *Store) keyBy(index []byte, v string) (Key, error) {
	var k Key
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(index).Get([]byte(v))
		if id == nil {
			return ErrNotFound
		}
		raw := tx.Bucket(bucketKeys).Get(id)
		if raw == nil {
			return fmt.Errorf("store: index %s points at missing key %s", index, id)
		}
		var err error
		k, err = decodeKey(id, raw)
		return err
	})
	return k, err
}

// CreateKey adds a new key atomically. It fails with ErrExists when the
// ID, the name or the hash is already taken, and then writes nothing.
func (s *Store) CreateKey(k Key) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketKeys).Get([]byte(k.ID)) != nil {
			return fmt.Errorf("store: key ID %s: %w", k.ID, ErrExists)
		}
		return putKey(tx, k)
	})
}

// PutKey creates or replaces the key with k.ID, keeping the indexes in
// step. It fails with ErrExists when another key holds k's name or hash.
func (s *Store) PutKey(k Key) error {
	return s.db.Update(func(tx *bolt.Tx) error { return putKey(tx, k) })
}

func putKey(tx *bolt.Tx, k Key) error {
	if k.ID == "" || k.Name == "" || k.Hash == "" {
		return fmt.Errorf("store: key needs an ID, a name and a hash (got %q, %q, hash of %d chars)", k.ID, k.Name, len(k.Hash))
	}
	keys, names, hashes := tx.Bucket(bucketKeys), tx.Bucket(bucketKeyNames), tx.Bucket(bucketKeyHashes)
	id := []byte(k.ID)
	if owner := names.Get([]byte(k.Name)); owner != nil && string(owner) != k.ID {
		return fmt.Errorf("store: key name %q: %w", k.Name, ErrExists)
	}
	if owner := hashes.Get([]byte(k.Hash)); owner != nil && string(owner) != k.ID {
		return fmt.Errorf("store: key hash of %q: %w", k.Name, ErrExists)
	}
	if raw := keys.Get(id); raw != nil {
		old, err := decodeKey(id, raw)
		if err != nil {
			return err
		}
		if old.Name != k.Name {
			if err := names.Delete([]byte(old.Name)); err != nil {
				return fmt.Errorf("store: unindex key name %q: %w", old.Name, err)
			}
		}
		if old.Hash != k.Hash {
			if err := hashes.Delete([]byte(old.Hash)); err != nil {
				return fmt.Errorf("store: unindex key hash of %q: %w", old.Name, err)
			}
		}
	}
	raw, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("store: encode key %q: %w", k.Name, err)
	}
	if err := keys.Put(id, raw); err != nil {
		return fmt.Errorf("store: put key %q: %w", k.Name, err)
	}
	if err := names.Put([]byte(k.Name), id); err != nil {
		return fmt.Errorf("store: index key name %q: %w", k.Name, err)
	}
	if err := hashes.Put([]byte(k.Hash), id); err != nil {
		return fmt.Errorf("store: index key hash of %q: %w", k.Name, err)
	}
	return nil
}

// TouchKeys records last-use times by key ID in one transaction. A time
// older than the stored one is ignored, and so is an ID that is gone, so a
// batch written late never undoes a newer write.
func (s *Store) TouchKeys(lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		for id, t := range lastUsed {
			raw := b.Get([]byte(id))
			if raw == nil {
				continue
			}
			k, err := decodeKey([]byte(id), raw)
			if err != nil {
				return err
			}
			if !t.After(k.LastUsed) {
				continue
			}
			k.LastUsed = t
			if raw, err = json.Marshal(k); err != nil {
				return fmt.Errorf("store: encode key %q: %w", k.Name, err)
			}
			if err := b.Put([]byte(id), raw); err != nil {
				return fmt.Errorf("store: put key %q: %w", k.Name, err)
			}
		}
		return nil
	})
}

func decodeKey(id, raw []byte) (Key, error) {
	var k Key
	if err := json.Unmarshal(raw, &k); err != nil {
		return k, fmt.Errorf("store: decode key %s: %w", id, err)
	}
	return k, nil
}
