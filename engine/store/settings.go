package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Setting reads the JSON value stored under key into v. It returns
// ErrNotFound when nothing is stored.
func (s *Store) Setting(key string, v any) error {
	return s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketSettings).Get([]byte(key))
		if raw == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("store: decode setting %s: %w", key, err)
		}
		return nil
	})
}

// PutSettings writes several settings in one transaction, so a start-up
// that fails half way stores none of them.
func (s *Store) PutSettings(values map[string]any) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSettings)
		for k, v := range values {
			raw, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("store: encode setting %s: %w", k, err)
			}
			if err := b.Put([]byte(k), raw); err != nil {
				return fmt.Errorf("store: put setting %s: %w", k, err)
			}
		}
		return nil
	})
}
