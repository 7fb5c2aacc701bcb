package store

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"
)

func putCerts(t *testing.T, s *Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := s.CertPut(k, []byte("v:"+k)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCertPutGet(t *testing.T) {
	s := openTest(t)
	before := time.Now()
	putCerts(t, s, "a/b.crt")
	v, mod, err := s.CertGet("a/b.crt")
	if err != nil || string(v) != "v:a/b.crt" {
		t.Fatalf("get = %q, %v", v, err)
	}
	if mod.Before(before.Add(-time.Second)) || mod.After(time.Now().Add(time.Second)) {
		t.Fatalf("modified %s, want about %s", mod, before)
	}
	if err := s.CertPut("a/b.crt", nil); err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.CertGet("a/b.crt"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value read back as %#v, %v", v, err)
	}
	for _, key := range []string{"a", "a/b", "nope", ""} {
		_, _, err := s.CertGet(key)
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("get %q: %v, want ErrNotFound and fs.ErrNotExist", key, err)
		}
	}
	if err := s.CertPut("", []byte("x")); err == nil {
		t.Error("put with an empty key succeeded")
	}
	if err := s.CertDelete(""); err == nil {
		t.Error("delete with an empty key succeeded")
	}
}

func TestCertKeysAndDelete(t *testing.T) {
	all := []string{"a", "a-b/c", "a.txt", "a/b", "a/b/c", "a/b/d", "a/bc", "ab/c", "z"}
	tests := []struct {
		name   string
		prefix string
		want   []string
		delete bool // then delete prefix and want the rest left
	}{
		{name: "everything", prefix: "", want: all},
		{name: "file and directory", prefix: "a", want: []string{"a", "a/b", "a/b/c", "a/b/d", "a/bc"}},
		{name: "whole components only", prefix: "a/b", want: []string{"a/b", "a/b/c", "a/b/d"}},
		{name: "directory only", prefix: "ab", want: []string{"ab/c"}},
		{name: "file only", prefix: "z", want: []string{"z"}},
		{name: "missing", prefix: "q", want: nil},
		{name: "not a component prefix", prefix: "a/b/", want: nil},
		{name: "delete file and directory", prefix: "a", delete: true,
			want: []string{"a-b/c", "a.txt", "ab/c", "z"}},
		{name: "delete directory", prefix: "a/b", delete: true,
			want: []string{"a", "a-b/c", "a.txt", "a/bc", "ab/c", "z"}},
		{name: "delete missing", prefix: "q", delete: true, want: all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			putCerts(t, s, all...)
			prefix := tt.prefix
			if tt.delete {
				if err := s.CertDelete(tt.prefix); err != nil {
					t.Fatal(err)
				}
				prefix = ""
			}
			got, err := s.CertKeys(prefix)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("keys %q = %q, want %q", prefix, got, tt.want)
			}
		})
	}
}

func TestCertTryLock(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	type step struct {
		owner string
		now   time.Duration // after t0
		want  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"free", []step{{"a", 0, true}}},
		{"held by another", []step{{"a", 0, true}, {"b", time.Second, false}}},
		{"held by owner refreshes", []step{{"a", 0, true}, {"a", 50 * time.Second, true}, {"b", 90 * time.Second, false}}},
		{"expired is taken over", []step{{"a", 0, true}, {"b", time.Minute, true}, {"a", time.Minute + time.Second, false}}},
		{"just before expiry", []step{{"a", 0, true}, {"b", time.Minute - 1, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			for i, st := range tt.steps {
				got, err := s.CertTryLock("issue_cert_x", st.owner, time.Minute, t0.Add(st.now))
				if err != nil {
					t.Fatal(err)
				}
				if got != st.want {
					t.Fatalf("step %d: %s at +%s took the lock = %v, want %v", i, st.owner, st.now, got, st.want)
				}
			}
		})
	}
}

func TestCertLockRejectsBadArguments(t *testing.T) {
	s := openTest(t)
	now := time.Now()
	for _, c := range []struct {
		name, owner string
		ttl         time.Duration
	}{{"", "a", time.Minute}, {"x", "", time.Minute}, {"x", "a", 0}} {
		if _, err := s.CertTryLock(c.name, c.owner, c.ttl, now); err == nil {
			t.Errorf("lock %q by %q for %s succeeded", c.name, c.owner, c.ttl)
		}
	}
}

func TestCertUnlockOnlyOwner(t *testing.T) {
	s := openTest(t)
	now := time.Now()
	if ok, err := s.CertTryLock("l", "a", time.Minute, now); err != nil || !ok {
		t.Fatalf("lock = %v, %v", ok, err)
	}
	if err := s.CertUnlock("l", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.CertTryLock("l", "b", time.Minute, now); ok {
		t.Fatal("another owner's unlock released the lock")
	}
	if err := s.CertUnlock("l", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.CertTryLock("l", "b", time.Minute, now); !ok {
		t.Fatal("the owner's unlock left the lock held")
	}
	if err := s.CertUnlock("missing", "a"); err != nil {
		t.Fatalf("unlock of a missing lock: %v", err)
	}
}

func TestCertsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	putCerts(t, s, "acme/ca/users/u/u.key")
	if ok, err := s.CertTryLock("l", "a", time.Hour, now); err != nil || !ok {
		t.Fatalf("lock = %v, %v", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _, err := s.CertGet("acme/ca/users/u/u.key"); err != nil || string(v) != "v:acme/ca/users/u/u.key" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	if ok, _ := s.CertTryLock("l", "b", time.Hour, now); ok {
		t.Fatal("lock lost on reopen")
	}
}
