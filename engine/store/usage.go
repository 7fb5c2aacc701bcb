package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// UsageRecord is one gateway request as stored in the raw usage bucket.
// engine/usage owns the meaning; the store keeps the records in time
// order, under the big-endian Unix nanoseconds of Time and a sequence
// number, so records of the same nanosecond never collide.
type UsageRecord struct {
	Time             time.Time     `json:"time"`
	Key              string        `json:"key"`
	User             string        `json:"user,omitempty"`
	Model            string        `json:"model"`
	Instance         string        `json:"instance,omitempty"`
	Route            string        `json:"route,omitempty"`
	PromptTokens     int64         `json:"prompt_tokens"`
	CompletionTokens int64         `json:"completion_tokens"`
	TTFT             time.Duration `json:"ttft_ns,omitempty"`
	Queued           time.Duration `json:"queued_ns,omitempty"` // in corral's queue, within TTFT and Duration; absent from older records
	Duration         time.Duration `json:"duration_ns"`
	Status           int           `json:"status"`
	Outcome          string        `json:"outcome,omitempty"`
}

// UsageDay totals one UTC day's requests for one key, model and end user.
// It is stored under Day, Key, Model and User joined by NUL bytes, so the
// bucket is in day order.
type UsageDay struct {
	Day              string        `json:"day"` // YYYY-MM-DD, UTC
	Key              string        `json:"key"`
	Model            string        `json:"model"`
	User             string        `json:"user,omitempty"`
	Requests         int64         `json:"requests"`
	PromptTokens     int64         `json:"prompt_tokens"`
	CompletionTokens int64         `json:"completion_tokens"`
	Errors           int64         `json:"errors"`
	Duration         time.Duration `json:"duration_ns"`         // summed over the requests
	Queued           time.Duration `json:"queued_ns,omitempty"` // time in corral's queue, summed over the requests
}

// pruneBatch bounds the deletions of one transaction, so pruning a long
// backlog never holds the write lock for long.
const pruneBatch = 10_000

func (d UsageDay) key() ([]byte, error) {
	if _, err := time.Parse(time.DateOnly, d.Day); err != nil {
		return nil, fmt.Errorf("store: usage day %q: want YYYY-MM-DD", d.Day)
	}
	for _, f := range []string{d.Key, d.Model, d.User} {
		if strings.IndexByte(f, 0) >= 0 {
			return nil, fmt.Errorf("store: usage of %s %q/%q/%q: NUL byte in a name", d.Day, d.Key, d.Model, d.User)
		}
	}
	return []byte(d.Day + "\x00" + d.Key + "\x00" + d.Model + "\x00" + d.User), nil
}

// AddUsage appends recs to the raw records and adds days to the daily
// totals (a day, key, model and user not stored yet starts at zero), all
// in one transaction: a batch is stored whole or not at all.
func (s *Store) AddUsage(recs []UsageRecord, days []UsageDay) error {
	if len(recs) == 0 && len(days) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketUsageRaw)
		for _, r := range recs {
			seq, err := raw.NextSequence()
			if err != nil {
				return fmt.Errorf("store: usage sequence: %w", err)
			}
			v, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("store: encode usage record: %w", err)
			}
			if err := raw.Put(rawKey(r.Time, seq), v); err != nil {
				return fmt.Errorf("store: put usage record: %w", err)
			}
		}
		agg := tx.Bucket(bucketUsageDays)
		for _, d := range days {
			k, err := d.key()
			if err != nil {
				return err
			}
			if old := agg.Get(k); old != nil {
				var o UsageDay
				if err := json.Unmarshal(old, &o); err != nil {
					return fmt.Errorf("store: decode usage of %s %q: %w", d.Day, d.Key, err)
				}
				d.Requests += o.Requests
				d.PromptTokens += o.PromptTokens
				d.CompletionTokens += o.CompletionTokens
				d.Errors += o.Errors
				d.Duration += o.Duration
				d.Queued += o.Queued
			}
			v, err := json.Marshal(d)
			if err != nil {
				return fmt.Errorf("store: encode usage of %s %q: %w", d.Day, d.Key, err)
			}
			if err := agg.Put(k, v); err != nil {
				return fmt.Errorf("store: put usage of %s %q: %w", d.Day, d.Key, err)
			}
		}
		return nil
	})
}

// UsageDays calls fn for each daily total from day from through day to
// (YYYY-MM-DD, both included; an empty one is open), in day order. fn
// runs inside a read transaction: it must not call the store.
func (s *Store) UsageDays(from, to string, fn func(UsageDay) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsageDays).Cursor()
		var k, v []byte
		if from == "" {
			k, v = c.First()
		} else {
			k, v = c.Seek([]byte(from))
		}
		for ; k != nil; k, v = c.Next() {
			if to != "" && string(k[:min(len(k), len(time.DateOnly))]) > to {
				return nil
			}
			var d UsageDay
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("store: decode usage %q: %w", k, err)
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	})
}

// UsageRecords calls fn for each raw record with since <= Time < until
// (a zero bound is open), oldest first. fn runs inside a read
// transaction: it must not call the store.
func (s *Store) UsageRecords(since, until time.Time, fn func(UsageRecord) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsageRaw).Cursor()
		var k, v []byte
		if since.IsZero() {
			k, v = c.First()
		} else {
			k, v = c.Seek(rawKey(since, 0))
		}
		var end []byte
		if !until.IsZero() {
			end = rawKey(until, 0)
		}
		for ; k != nil; k, v = c.Next() {
			if end != nil && bytes.Compare(k, end) >= 0 {
				return nil
			}
			var r UsageRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("store: decode usage record %x: %w", k, err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// PruneUsage deletes the raw records older than rawBefore and the daily
// totals of days before dayBefore (YYYY-MM-DD; empty keeps them all), a
// bounded batch per transaction. It returns how many of each it deleted.
func (s *Store) PruneUsage(rawBefore time.Time, dayBefore string) (raw, days int, err error) {
	if !rawBefore.IsZero() {
		end := rawKey(rawBefore, 0)
		if raw, err = s.pruneBelow(bucketUsageRaw, end); err != nil {
			return raw, 0, fmt.Errorf("store: prune usage records: %w", err)
		}
	}
	if dayBefore != "" {
		if days, err = s.pruneBelow(bucketUsageDays, []byte(dayBefore)); err != nil {
			return raw, days, fmt.Errorf("store: prune daily usage: %w", err)
		}
	}
	return raw, days, nil
}

// pruneBelow deletes every key of bucket below end.
func (s *Store) pruneBelow(bucket, end []byte) (int, error) {
	total := 0
	for {
		n := 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			var doomed [][]byte
			c := b.Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0 && len(doomed) < pruneBatch; k, _ = c.Next() {
				doomed = append(doomed, bytes.Clone(k))
			}
			for _, k := range doomed {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n = len(doomed)
			return nil
		})
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

// rawKey is t's Unix nanoseconds (0 before 1970) and seq, big-endian.
func rawKey(t time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(max(t.UnixNano(), 0)))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}
