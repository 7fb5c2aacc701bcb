package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"corral/cmd/ollama-sim/simimage"
	"corral/engine/enginetest"
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

// fakeSystemctl stands in for systemctl where systemd is not PID 1 (as on
// the build machines): it records each call and runs the unit's
// ExecStart with its EnvironmentFile as systemd would, in the background.
const fakeSystemctl = `#!/usr/bin/env bash
state=${FAKE_SYSTEMD_STATE:?}
echo "systemctl $*" >>"$state/calls"
running() { [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }
stop() {
	if running; then
		pid=$(cat "$state/pid")
		kill -TERM "$pid"
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$state/pid"
}
start() {
	(
		set -a
		. /etc/corral/corral.env
		set +a
		export CORRAL_DATA_DIR=/var/lib/corral
		exec /usr/local/bin/corral serve >>"$state/corral.log" 2>&1
	) &
	echo $! >"$state/pid"
}
case $1 in
daemon-reload) ;;
enable) mkdir -p /etc/systemd/system/multi-user.target.wants && ln -sf /etc/systemd/system/corral.service /etc/systemd/system/multi-user.target.wants/corral.service ;;
is-active) running ;;
start) start ;;
restart) stop; start ;;
stop) stop ;;
*) echo "fake systemctl: $* not handled" >&2; exit 1 ;;
esac
`

// TestInstallScriptLive runs install.sh on this machine's own / as on a
// server, in a mount namespace where /etc, /usr/local/bin and /var/lib
// are overlays (nothing reaches the real ones) and a stand-in systemctl
// runs the service: it starts corral, prints the admin link and token
// and corral doctor; run again, it upgrades and restarts corral, which
// adopts its instances.
func TestInstallScriptLive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: install.sh on / runs as root (in a mount namespace of its own)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare (util-linux) for a mount namespace")
	}
	sim := simimage.Image(t) // skips when no Docker daemon answers
	t.Parallel()
	bin := corralBin(t)
	ns := enginetest.Namespace(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	fakeBin := filepath.Join(dir, "bin")
	for _, d := range []string{state, fakeBin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(fakeBin, "systemctl"), []byte(fakeSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fakeBin, "journalctl"), []byte("#!/bin/sh\ncat \"$FAKE_SYSTEMD_STATE/corral.log\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	gateway, admin := freePort(t), freePort(t)
	settings := strings.Join([]string{
		"CORRAL_NAMESPACE=" + ns, "CORRAL_OLLAMA_IMAGE=" + sim, "CORRAL_ADDR=" + gateway, "CORRAL_ADMIN_ADDR=" + admin,
		"CORRAL_CHAT_UI=none", "CORRAL_CHAT_ADDR=", "CORRAL_HEALTH_INTERVAL=300ms", "CORRAL_LOG_FORMAT=json", ""}, "\n")
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// Everything happens inside one namespace: the overlays end with it.
	// corral is stopped there too, whatever happened before.
	inside := `set -u
d=$1 script=$2 bin=$3
for m in /etc /usr/local/bin /var/lib; do
	n=$(echo "$m" | tr / _)
	mkdir -p "$d/upper$n" "$d/work$n"
	mount -t overlay overlay -o "lowerdir=$m,upperdir=$d/upper$n,workdir=$d/work$n" "$m" || exit 3
done
mount -t tmpfs tmpfs /run/systemd || exit 3
mkdir -p /run/systemd/system /etc/corral
cat "$d/settings" >/etc/corral/corral.env
trap 'systemctl stop' EXIT
echo "=== install"
bash "$script" --binary "$bin" || exit 1
echo "=== upgrade"
bash "$script" --binary "$bin" || exit 1
echo "=== status"
/usr/local/bin/corral status --data-dir /var/lib/corral
`
	if err := os.WriteFile(filepath.Join(dir, "settings"), []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "bash", "-c", inside, "inside", dir, script, bin)
	cmd.Env = append(os.Environ(), "PATH="+fakeBin+":"+os.Getenv("PATH"), "FAKE_SYSTEMD_STATE="+state)
	t.Cleanup(func() {
		// The stand-in's corral, should the trap not have run.
		if raw, err := os.ReadFile(filepath.Join(state, "pid")); err == nil {
			exec.Command("kill", strings.TrimSpace(string(raw))).Run()
		}
	})
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok && exit.ExitCode() == 3 {
		t.Skipf("no overlay or tmpfs mounts here: %s", out)
	}
	if err != nil {
		logText, _ := os.ReadFile(filepath.Join(state, "corral.log"))
		t.Fatalf("install.sh on /: %v\n%s\ncorral's log:\n%s", err, out, logText)
	}
	text := string(out)
	t.Logf("install.sh:\n%s", text)
	first, rest, _ := strings.Cut(text, "=== upgrade")
	upgrade, status, _ := strings.Cut(rest, "=== status")
	for _, c := range []struct {
		part, name string
		want       []string
	}{
		{first, "install", []string{"installed /usr/local/bin/corral", "settings /etc/corral/corral.env (kept)", "starting corral", "corral is running.",
			"admin page  http://127.0.0.1:" + strings.Split(admin, ":")[1] + "/", "sign in     http://127.0.0.1:" + strings.Split(admin, ":")[1] + "/login/link?code=", "  corral  running on /var/lib/corral: namespace " + ns, // OK or WARN while the instance starts
			"OK    port    --admin-addr " + admin + " is in use by the corral running on /var/lib/corral"}},
		{upgrade, "upgrade", []string{"upgraded /usr/local/bin/corral", "restarting corral (the Ollama containers keep running and are adopted)", "corral is running."}},
		{status, "status", []string{ns + "-ollama-0"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.part, w) {
				t.Errorf("%s output lacks %q", c.name, w)
			}
		}
	}
	// The token printed is the one the admin listener takes.
	m := regexp.MustCompile(`admin token ([0-9a-f]{48})\b`).FindAllStringSubmatch(text, -1)
	if len(m) != 2 || m[0][1] != m[1][1] {
		t.Fatalf("admin token lines: %v", m)
	}
	calls, _ := os.ReadFile(filepath.Join(state, "calls"))
	if want := "systemctl daemon-reload\nsystemctl enable corral.service\nsystemctl is-active --quiet corral.service\nsystemctl start corral.service\n"; !strings.HasPrefix(string(calls), want) {
		t.Errorf("systemctl calls:\n%s\nwant them to start:\n%s", calls, want)
	}
	if !strings.Contains(string(calls), "systemctl restart corral.service") {
		t.Errorf("the upgrade did not restart corral:\n%s", calls)
	}
}
