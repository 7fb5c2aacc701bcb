package store

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func allDays(t *testing.T, s *Store, from, to string) []UsageDay {
	t.Helper()
	var out []UsageDay
	if err := s.UsageDays(from, to, func(d UsageDay) error { out = append(out, d); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func allRecords(t *testing.T, s *Store, since, until time.Time) []UsageRecord {
	t.Helper()
	var out []UsageRecord
	if err := s.UsageRecords(since, until, func(r UsageRecord) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAddUsageMergesDays(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	recs := []UsageRecord{
		{Time: t0, Key: "alice", Model: "llama3.2", PromptTokens: 10, CompletionTokens: 20, Status: 200, Queued: 300 * time.Millisecond, Duration: time.Second},
		{Time: t0, Key: "alice", Model: "llama3.2", PromptTokens: 1, CompletionTokens: 2, Status: 200}, // same nanosecond
	}
	batch := []UsageDay{
		{Day: "2026-11-01", Key: "alice", Model: "llama3.2", Requests: 2, PromptTokens: 11, CompletionTokens: 22, Duration: time.Second, Queued: 300 * time.Millisecond},
		{Day: "2026-11-01", Key: "alice", Model: "llama3.2", User: "u@x", Requests: 1, PromptTokens: 5, Errors: 1},
		{Day: "2026-11-02", Key: "bob", Model: "qwen3:8b", Requests: 1, CompletionTokens: 7},
	}
	if err := s.AddUsage(recs, batch); err != nil {
		t.Fatal(err)
	}
	// A second batch adds to the stored totals.
	if err := s.AddUsage(nil, batch[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUsage(nil, nil); err != nil {
		t.Fatal(err)
	}
	got := allDays(t, s, "", "")
	want := []string{
		"2026-11-01 alice llama3.2  req=4 p=22 c=44 err=0 dur=2s queued=600ms",
		"2026-11-01 alice llama3.2 u@x req=1 p=5 c=0 err=1 dur=0s queued=0s",
		"2026-11-02 bob qwen3:8b  req=1 p=0 c=7 err=0 dur=0s queued=0s",
	}
	if len(got) != len(want) {
		t.Fatalf("days = %+v", got)
	}
	for i, d := range got {
		line := fmt.Sprintf("%s %s %s %s req=%d p=%d c=%d err=%d dur=%s queued=%s", d.Day, d.Key, d.Model, d.User, d.Requests, d.PromptTokens, d.CompletionTokens, d.Errors, d.Duration, d.Queued)
		if line != want[i] {
			t.Errorf("day %d = %q, want %q", i, line, want[i])
		}
	}
	if r := allRecords(t, s, time.Time{}, time.Time{}); len(r) != 2 || r[0].PromptTokens != 10 || r[0].Queued != 300*time.Millisecond || r[1].PromptTokens != 1 {
		t.Fatalf("records = %+v", r)
	}

	// Bad input writes nothing of its batch.
	for _, bad := range []UsageDay{
		{Day: "2026-13-01", Key: "a"},
		{Day: "1 Nov", Key: "a"},
		{Day: "2026-11-03", Key: "a\x00b"},
	} {
		err := s.AddUsage([]UsageRecord{{Time: t0, Key: "x"}}, []UsageDay{bad})
		if err == nil {
			t.Errorf("AddUsage(%+v) succeeded", bad)
		}
	}
	if r := allRecords(t, s, time.Time{}, time.Time{}); len(r) != 2 {
		t.Fatalf("a refused batch stored records: %+v", r)
	}
}

// TestUsageBeforeQueueTime reads a record and a daily total written
// before corral kept queue time: they decode with none, and a new batch
// adds its queue time to the old total.
func TestUsageBeforeQueueTime(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketUsageRaw).Put(rawKey(t0, 1),
			[]byte(`{"time":"2026-11-01T10:00:00Z","key":"alice","model":"m","prompt_tokens":1,"completion_tokens":2,"ttft_ns":5000000,"duration_ns":9000000,"status":200}`)); err != nil {
			return err
		}
		return tx.Bucket(bucketUsageDays).Put([]byte("2026-11-01\x00alice\x00m\x00"),
			[]byte(`{"day":"2026-11-01","key":"alice","model":"m","requests":1,"prompt_tokens":1,"completion_tokens":2,"errors":0,"duration_ns":9000000}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := allRecords(t, s, time.Time{}, time.Time{}); len(r) != 1 || r[0].Queued != 0 || r[0].TTFT != 5*time.Millisecond {
		t.Fatalf("old record = %+v", r)
	}
	if err := s.AddUsage(nil, []UsageDay{{Day: "2026-11-01", Key: "alice", Model: "m", Requests: 1, Queued: 2 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if d := allDays(t, s, "", ""); len(d) != 1 || d[0].Requests != 2 || d[0].Queued != 2*time.Second || d[0].Duration != 9*time.Millisecond {
		t.Fatalf("days = %+v", d)
	}
}

func TestUsageDaysRange(t *testing.T) {
	s := openTest(t)
	var batch []UsageDay
	for _, day := range []string{"2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"} {
		batch = append(batch, UsageDay{Day: day, Key: "k", Model: "m", Requests: 1}, UsageDay{Day: day, Key: "k", Model: "m", User: "zz", Requests: 1})
	}
	if err := s.AddUsage(nil, batch); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		from, to string
		want     string
	}{
		{"", "", "2026-10-31 2026-10-31 2026-11-01 2026-11-01 2026-11-02 2026-11-02 2026-11-03 2026-11-03"},
		{"2026-11-01", "2026-11-02", "2026-11-01 2026-11-01 2026-11-02 2026-11-02"},
		{"2026-11-02", "", "2026-11-02 2026-11-02 2026-11-03 2026-11-03"},
		{"", "2026-10-31", "2026-10-31 2026-10-31"},
		{"2026-11-04", "", ""},
		{"2026-11-02", "2026-11-01", ""},
	}
	for _, tc := range cases {
		var days []string
		for _, d := range allDays(t, s, tc.from, tc.to) {
			days = append(days, d.Day)
		}
		if got := strings.Join(days, " "); got != tc.want {
			t.Errorf("UsageDays(%q, %q) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestUsageRecordsRangeAndPrune(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var recs []UsageRecord
	for i := range 5 {
		recs = append(recs, UsageRecord{Time: t0.Add(time.Duration(i) * time.Hour), Key: "k", Model: "m", Status: 200 + i})
	}
	if err := s.AddUsage(recs, []UsageDay{
		{Day: "2026-10-30", Key: "k", Model: "m", Requests: 1},
		{Day: "2026-10-31", Key: "k", Model: "m", Requests: 1},
		{Day: "2026-11-01", Key: "k", Model: "m", Requests: 5},
	}); err != nil {
		t.Fatal(err)
	}
	if got := allRecords(t, s, t0.Add(time.Hour), t0.Add(3*time.Hour)); len(got) != 2 || got[0].Status != 201 || got[1].Status != 202 {
		t.Fatalf("records in [1h, 3h) = %+v", got)
	}

	raw, days, err := s.PruneUsage(t0.Add(2*time.Hour), "2026-10-31")
	if err != nil || raw != 2 || days != 1 {
		t.Fatalf("prune = %d, %d, %v; want 2 records and 1 day", raw, days, err)
	}
	if got := allRecords(t, s, time.Time{}, time.Time{}); len(got) != 3 || got[0].Status != 202 {
		t.Fatalf("records after prune = %+v", got)
	}
	if got := allDays(t, s, "", ""); len(got) != 2 || got[0].Day != "2026-10-31" {
		t.Fatalf("days after prune = %+v", got)
	}
	// Zero bounds keep everything.
	if raw, days, err := s.PruneUsage(time.Time{}, ""); err != nil || raw != 0 || days != 0 {
		t.Fatalf("prune with no bounds = %d, %d, %v", raw, days, err)
	}
}

// TestPruneInBatches deletes more records than one transaction takes.
func TestPruneInBatches(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]UsageRecord, pruneBatch+10)
	for i := range recs {
		recs[i] = UsageRecord{Time: t0.Add(time.Duration(i) * time.Millisecond), Key: "k"}
	}
	if err := s.AddUsage(recs, nil); err != nil {
		t.Fatal(err)
	}
	raw, _, err := s.PruneUsage(t0.Add(time.Duration(len(recs)-3)*time.Millisecond), "")
	if err != nil || raw != len(recs)-3 {
		t.Fatalf("prune = %d, %v; want %d", raw, err, len(recs)-3)
	}
	if got := allRecords(t, s, time.Time{}, time.Time{}); len(got) != 3 {
		t.Fatalf("%d records left, want 3", len(got))
	}
}

// TestMigrateFromSchema2 opens a database of a corral that knew keys but
// not usage: it gains the usage buckets and keeps its keys.
func TestMigrateFromSchema2(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], 2)
		meta.Put(keySchema, v[:])
		for _, b := range [][]byte{bucketSettings, bucketInstances, bucketKeys, bucketKeyNames, bucketKeyHashes} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return putKey(tx, testKey("0000000a", "alice", "ha"))
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
	if v, err := s.Schema(); err != nil || v != SchemaVersion() || v < 3 {
		t.Fatalf("schema = %d, %v; want %d", v, err, SchemaVersion())
	}
	if k, err := s.KeyByName("alice"); err != nil || k.Limits != (Limits{}) {
		t.Fatalf("key after migration = %+v, %v", k, err)
	}
	if err := s.AddUsage([]UsageRecord{{Time: time.Now(), Key: "alice"}}, []UsageDay{{Day: "2026-11-01", Key: "alice", Requests: 1}}); err != nil {
		t.Fatal(err)
	}
}
