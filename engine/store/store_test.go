package store

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestOpenMigratesAndReopens(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Schema(); err != nil || v != SchemaVersion() {
		t.Fatalf("schema = %d, %v; want %d", v, err, SchemaVersion())
	}
	if err := s.PutSettings(map[string]any{"ollama_image": "x:1", "cpu_instances": 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var image string
	if err := s.Setting("ollama_image", &image); err != nil || image != "x:1" {
		t.Fatalf("setting = %q, %v", image, err)
	}
	var missing string
	if err := s.Setting("nope", &missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing setting: %v, want ErrNotFound", err)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestReplaceInstances(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := []Instance{{Name: "a", GPU: "cpu"}, {Name: "b", GPU: "GPU-1", Env: map[string]string{"K": "V"}}}
	if err := s.ReplaceInstances(first); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceInstances(first[1:]); err != nil {
		t.Fatal(err)
	}
	got, err := s.Instances()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "b" || got[0].Env["K"] != "V" {
		t.Fatalf("instances = %+v", got)
	}
}

func TestCheckWritable(t *testing.T) {
	if err := CheckWritable(filepath.Join(t.TempDir(), "sub", "dir")); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Skip("root can write anywhere; the read-only case is covered by the CLI test with a file in the way")
	}
	ro := t.TempDir()
	os.Chmod(ro, 0o500)
	if err := CheckWritable(ro); err == nil {
		t.Fatal("read-only dir reported writable")
	}
}
