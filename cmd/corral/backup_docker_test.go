package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"corral/engine/store"
)

// storeContents is what a store holds that a backup must keep.
type storeContents struct {
	keys     []string // name:hash
	settings map[string]string
	records  int
	days     int64 // requests summed over the daily totals
}

func readStore(t *testing.T, dir string) storeContents {
	t.Helper()
	st, err := store.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var c storeContents
	ks, err := st.Keys()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		c.keys = append(c.keys, k.Name+":"+k.Hash)
	}
	c.settings = map[string]string{}
	for _, name := range []string{"gpus", "cpu_instances", "ollama_image", "namespace", "weights"} {
		var v any
		if err := st.Setting(name, &v); err == nil {
			c.settings[name] = fmt.Sprint(v)
		}
	}
	st.UsageRecords(time.Time{}, time.Now().Add(time.Hour), func(store.UsageRecord) error { c.records++; return nil })
	st.UsageDays("", "", func(d store.UsageDay) error { c.days += d.Requests; return nil })
	return c
}

// restoreInto restores file into a new data dir with the CLI and reads it.
func restoreInto(t *testing.T, file string) storeContents {
	t.Helper()
	dir := t.TempDir()
	if out, err := runCLI(t, "restore", "--data-dir", dir, file); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	return readStore(t, dir)
}

// TestBackupUnderLoad: a backup taken while 20 clients stream restores to
// a consistent store with every key and setting, and one taken once the
// requests are settled holds every usage row.
func TestBackupUnderLoad(t *testing.T) {
	f := startFleet(t, 2)
	t.Parallel()
	for _, in := range f.st.Instances {
		sim(t, in.Endpoint, "POST", "/_sim/config", `{"token_interval":"10ms"}`, nil)
	}
	for _, name := range []string{"bob", "carol"} {
		if out, err := runCLI(t, "keys", "create", name, "--data-dir", f.dataDir); err != nil {
			t.Fatalf("keys create: %v\n%s", err, out)
		}
	}
	if out, err := runCLI(t, "weight", f.st.Instances[1].Name, "3", "--data-dir", f.dataDir); err != nil {
		t.Fatalf("weight: %v\n%s", err, out)
	}

	var done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := f.do("POST", "/v1/chat/completions", `{"model":"llama3.2:1b","stream":true,"max_tokens":15,"messages":[{"role":"user","content":"hi"}]}`)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "[DONE]") {
					t.Errorf("stream: %d %s", resp.StatusCode, body)
					return
				}
				done.Add(1)
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	during := filepath.Join(t.TempDir(), "during.db")
	out, err := runCLI(t, "backup", "--data-dir", f.dataDir, during)
	if err != nil || !strings.Contains(out, "while corral served") {
		t.Fatalf("backup under load: %v\n%s", err, out)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	total := int(done.Load())
	if total < 40 {
		t.Fatalf("only %d requests under load", total)
	}

	mid := restoreInto(t, during)
	if len(mid.keys) != 3 || mid.settings["ollama_image"] == "" || !strings.Contains(mid.settings["weights"], "3") {
		t.Fatalf("backup under load holds keys %v, settings %v", mid.keys, mid.settings)
	}
	if int64(mid.records) != mid.days {
		t.Fatalf("backup under load is inconsistent: %d usage records, daily totals count %d", mid.records, mid.days)
	}

	// Once settled, a backup has every request's usage row.
	var after storeContents
	deadline := time.Now().Add(20 * time.Second)
	for {
		file := filepath.Join(t.TempDir(), "after.db")
		if out, err := runCLI(t, "backup", "--data-dir", f.dataDir, file); err != nil {
			t.Fatalf("backup: %v\n%s", err, out)
		}
		after = restoreInto(t, file)
		if after.records >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if after.records != total || after.days != int64(total) {
		t.Fatalf("settled backup: %d usage records, %d in daily totals; %d requests were served", after.records, after.days, total)
	}
	if mid.records > after.records {
		t.Fatalf("backup under load has more rows (%d) than after (%d)", mid.records, after.records)
	}
	// Against the store itself, once corral stopped.
	f.stop(t, syscall.SIGTERM)
	live := readStore(t, f.dataDir)
	slices.Sort(live.keys)
	slices.Sort(after.keys)
	if !slices.Equal(live.keys, after.keys) || fmt.Sprint(live.settings) != fmt.Sprint(after.settings) || live.records != after.records {
		t.Fatalf("restored backup differs from the store:\nstore  %+v\nbackup %+v", live, after)
	}
}
