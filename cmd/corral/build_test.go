package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBuildScript runs scripts/build as a release would, for this host's
// architecture and the other one, and checks what corral version says of
// the result. The build output must carry no compiler warnings (the NVML
// headers' deprecations are silenced).
func TestBuildScript(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: scripts/build compiles corral twice (minutes on 2 cores)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("scripts/build makes linux binaries on linux")
	}
	t.Parallel()
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "build"), "--version", "v0.0.0-test", "--arch", runtime.GOARCH+","+other, "--out", out)
	// A user's environment: no CGO_CFLAGS of ours.
	cmd.Env = append(os.Environ(), "CGO_CFLAGS=")
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/build: %v\n%s", err, log)
	}
	if s := strings.ToLower(string(log)); strings.Contains(s, "warning") || strings.Contains(s, "deprecated") {
		t.Errorf("build output carries compiler warnings:\n%s", log)
	}
	commit, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}

	host := filepath.Join(out, "corral-linux-"+runtime.GOARCH)
	ver, err := exec.Command(host, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", host, err, ver)
	}
	for _, want := range []string{
		"corral v0.0.0-test\n",
		"commit  " + strings.TrimSpace(string(commit)),
		"built   20",
		"go      " + runtime.Version() + " linux/" + runtime.GOARCH,
		"nvml    yes",
	} {
		if !strings.Contains(string(ver), want) {
			t.Errorf("corral version lacks %q:\n%s", want, ver)
		}
	}

	// The other architecture: with NVML given a C cross compiler, else
	// without, and the build says so.
	cross := filepath.Join(out, "corral-linux-"+other)
	meta, err := exec.Command("go", "version", "-m", cross).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m %s: %v\n%s", cross, err, meta)
	}
	if !strings.Contains(string(meta), "GOARCH="+other) {
		t.Errorf("%s is not a %s binary:\n%s", cross, other, meta)
	}
	if strings.Contains(string(meta), "CGO_ENABLED=0") && !strings.Contains(string(log), "WITHOUT NVML (CGO_ENABLED=0") {
		t.Errorf("%s was built without NVML and the build did not say so:\n%s", cross, log)
	}
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil || strings.Count(string(sums), "\n") != 2 {
		t.Errorf("SHA256SUMS: %v\n%s", err, sums)
	}
}
