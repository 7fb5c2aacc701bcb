package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// A backup is the whole database (keys, usage, settings, certificates,
// the chat UI's secrets, the store's identity) as one bbolt file, written
// from one read transaction: consistent while corral serves. It is itself
// a store, so restoring is checking it and putting it in place.

// Backup writes a consistent copy of the whole database to w. The copy is
// taken in one read transaction into a temporary file beside the database
// and then streamed from there: bbolt cannot grow its file while a read
// transaction is open, so a slow reader (a browser on a slow link) must
// not hold one. size, when not nil, learns the length before the first
// byte is written.
func (s *Store) Backup(w io.Writer, size func(int64)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(s.db.Path()), ".backup-*")
	if err != nil {
		// A data dir we may not write (a read-only open by another user):
		// stream from the transaction itself.
		return s.backupDirect(w, size)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := s.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(tmp)
		return err
	}); err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	n, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	if size != nil {
		size(n)
	}
	written, err := io.Copy(w, tmp)
	if err != nil {
		return written, fmt.Errorf("store: backup: %w", err)
	}
	return written, nil
}

func (s *Store) backupDirect(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup: %w", err)
	}
	return n, nil
}

// Info describes a store file: what a backup holds.
type Info struct {
	Schema       int    `json:"schema"`
	ID           string `json:"id,omitempty"` // empty in a store no corral of this version opened yet
	Settings     int    `json:"settings"`
	Keys         int    `json:"keys"`
	UsageRecords int    `json:"usage_records"`
	UsageDays    int    `json:"usage_days"`
	Certs        int    `json:"certs"` // certificate storage entries (certificates, keys, ACME accounts)
}

// ErrNotStore means a file is not a corral store (or backup).
var ErrNotStore = errors.New("not a corral store")

// Inspect checks that the file at path is a whole corral store this
// binary can read, and says what it holds. It opens the file read-only:
// a backup is never changed by looking at it.
func Inspect(path string) (Info, error) {
	var info Info
	fi, err := os.Stat(path)
	if err != nil {
		return info, fmt.Errorf("store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if errors.Is(err, bolt.ErrTimeout) {
		return info, fmt.Errorf("store: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return info, fmt.Errorf("store: %s is %w (a corral backup is a bbolt database): %v", path, ErrNotStore, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		// Before any page is read: a file cut short (a download that
		// stopped) would fault on its missing pages.
		if tx.Size() > fi.Size() {
			return fmt.Errorf("store: %s is cut off: %d of its %d bytes are there", path, fi.Size(), tx.Size())
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil || meta.Get(keySchema) == nil {
			return fmt.Errorf("store: %s is %w: it has no schema version", path, ErrNotStore)
		}
		info.Schema = schemaOf(meta)
		if info.Schema > len(migrations) {
			return newerError(path, info.Schema)
		}
		info.ID = string(meta.Get(keyStoreID))
		for _, c := range []struct {
			bucket []byte
			n      *int
		}{
			{bucketSettings, &info.Settings},
			{bucketKeys, &info.Keys},
			{bucketUsageRaw, &info.UsageRecords},
			{bucketUsageDays, &info.UsageDays},
			{bucketCerts, &info.Certs},
		} {
			if b := tx.Bucket(c.bucket); b != nil {
				*c.n = b.Stats().KeyN
			}
		}
		// Every page, so a damaged or cut-off file is found now, not
		// after it replaced a good store.
		var first error
		for err := range tx.Check() { // drained: the check runs in its own goroutine
			if first == nil {
				first = fmt.Errorf("store: %s is damaged: %w", path, err)
			}
		}
		return first
	})
	return info, err
}

// Restore puts the backup at from in place of the store in dir. No corral
// may have the store open (ErrLocked). The backup is checked first
// (Inspect: a corral store, not newer than this binary, undamaged); the
// store it replaces is kept as corral.db.bak. The restored store keeps
// the identity of the one it replaces, so it still owns that store's
// containers; into an empty data dir it keeps the backup's. An older
// schema is upgraded when corral next opens it. bak is where the replaced
// store is kept; empty when there was none.
func Restore(dir, from string) (info Info, bak string, err error) {
	info, err = Inspect(from)
	if err != nil {
		return info, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return info, "", fmt.Errorf("store: create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// Holding the current store (a shared lock) keeps a corral from
	// starting on it until the new one is in place.
	var cur *Store
	if _, err := os.Stat(path); err == nil {
		if cur, err = OpenReadOnly(dir); err != nil {
			return info, "", err
		}
		defer cur.Close()
	}
	tmp, err := copyBeside(from, path)
	if err != nil {
		return info, "", err
	}
	defer os.Remove(tmp) // a no-op once renamed
	if cur != nil && cur.ID() != "" {
		adopted, err := cur.AdoptedOwners()
		if err != nil {
			return info, "", err
		}
		if err := keepIdentity(tmp, cur.ID(), adopted); err != nil {
			return info, "", err
		}
		info.ID = cur.ID()
	}
	if cur != nil {
		bak = path + ".bak"
		if err := os.Remove(bak); err != nil && !errors.Is(err, os.ErrNotExist) {
			return info, "", fmt.Errorf("store: remove old %s: %w", bak, err)
		}
		// A hard link keeps the old store whole at every moment; where
		// links are not possible, a copy.
		if err := os.Link(path, bak); err != nil {
			if err := copyFile(path, bak); err != nil {
				return info, "", fmt.Errorf("store: keep the current store as %s: %w", bak, err)
			}
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return info, "", fmt.Errorf("store: put %s in place: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return info, bak, nil
}

// copyBeside copies from to a temporary file in path's directory, synced.
func copyBeside(from, path string) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".restore-*")
	if err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	name := tmp.Name()
	tmp.Close()
	if err := copyFile(from, name); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("store: restore: %w", err)
	}
	return name, nil
}

// copyFile copies from to to (mode 0600: a store holds secrets), synced.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// keepIdentity gives the store file at path the ID id, and adds adopted to
// its adopted owners.
func keepIdentity(path, id string, adopted []string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyStoreID, []byte(id)); err != nil {
			return err
		}
		return addAdopted(meta, adopted)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: restore: keep the store's identity: %w", err)
	}
	return nil
}
