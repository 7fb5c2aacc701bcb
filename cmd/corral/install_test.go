package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallScript runs scripts/install.sh into a throwaway root, as a
// first install and again as an upgrade, and checks what it put in place;
// systemd-analyze verify checks the unit where systemd is installed.
func TestInstallScript(t *testing.T) {
	bin := corralBin(t)
	root := t.TempDir()
	script := filepath.Join("..", "..", "scripts", "install.sh")
	install := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := exec.Command("bash", append([]string{script, "--root", root}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	dest := filepath.Join(root, "usr", "local", "bin", "corral")
	unit := filepath.Join(root, "etc", "systemd", "system", "corral.service")
	envFile := filepath.Join(root, "etc", "corral", "corral.env")

	// inPlace checks what every install must leave, whatever came before.
	inPlace := func(t *testing.T) {
		t.Helper()
		checks := []struct {
			path string
			mode os.FileMode // permission bits wanted
			dir  bool
		}{
			{dest, 0o755, false},
			{unit, 0o644, false},
			{filepath.Join(root, "var", "lib", "corral"), 0o700, true},
			{envFile, 0o600, false},
		}
		for _, c := range checks {
			fi, err := os.Stat(c.path)
			if err != nil {
				t.Fatalf("not installed: %v", err)
			}
			if fi.IsDir() != c.dir || fi.Mode().Perm() != c.mode {
				t.Errorf("%s: mode %v, want %v (dir %v)", c.path, fi.Mode(), c.mode, c.dir)
			}
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "scripts", "corral.service"))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(unit); string(got) != string(want) {
			t.Errorf("installed unit differs from scripts/corral.service")
		}
		link := filepath.Join(root, "etc", "systemd", "system", "multi-user.target.wants", "corral.service")
		if target, err := os.Readlink(link); err != nil || !strings.HasSuffix(target, "/etc/systemd/system/corral.service") {
			t.Errorf("not enabled: %s -> %q (%v)", link, target, err)
		}
		out, err := exec.Command(dest, "version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "corral ") {
			t.Errorf("installed corral version: %v\n%s", err, out)
		}
	}

	t.Run("first install", func(t *testing.T) {
		out := install(t, "--binary", bin)
		for _, want := range []string{"installed " + dest, "settings " + envFile + " (new)", "enabled corral.service", "nothing started"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		inPlace(t)
	})

	t.Run("upgrade", func(t *testing.T) {
		// The admin's settings survive; a stale binary is replaced.
		settings := "CORRAL_DOMAIN=chat.example.com\n"
		if err := os.WriteFile(envFile, []byte(settings), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dest, []byte("#!/bin/sh\necho corral old-version\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		out := install(t, "--binary", bin, "--no-start")
		if !strings.Contains(out, "upgraded "+dest+": corral old-version -> corral ") || !strings.Contains(out, "(kept)") {
			t.Errorf("upgrade output:\n%s", out)
		}
		if got, _ := os.ReadFile(envFile); string(got) != settings {
			t.Errorf("settings overwritten: %q", got)
		}
		inPlace(t)
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze not installed (Debian package systemd): the unit is not verified")
		}
		// verify checks that ExecStart's program exists: point it at the
		// installed binary in the throwaway root. Everything else is the
		// installed unit as it is.
		raw, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(t.TempDir(), "corral.service")
		text := strings.Replace(string(raw), "ExecStart=/usr/local/bin/corral ", "ExecStart="+dest+" ", 1)
		if err := os.WriteFile(copyPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// verify exits 0 on unknown keys and bad values, only saying so:
		// any output is a finding.
		out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	t.Run("refuses", func(t *testing.T) {
		cases := []struct {
			name string
			args []string
			want string
		}{
			{"missing binary", []string{"--binary", filepath.Join(root, "nope")}, "not an executable file"},
			{"unknown flag", []string{"--bogus"}, "unknown argument --bogus"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				out, err := exec.Command("bash", append([]string{script, "--root", root}, c.args...)...).CombinedOutput()
				if err == nil || !strings.Contains(string(out), c.want) {
					t.Fatalf("install.sh %v: err %v, output:\n%s", c.args, err, out)
				}
			})
		}
	})
}
