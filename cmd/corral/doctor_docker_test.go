package main

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestDoctorOnThisMachine runs corral doctor as a person would, beside a
// running corral (one CPU instance of the simulator): every check prints
// a line, the corral's own ports count as free for it, its image is
// present; a port held by another program fails the run.
func TestDoctorOnThisMachine(t *testing.T) {
	f := startFleet(t, 1, "--admin-addr", "127.0.0.1:0")
	t.Parallel()
	gatewayAddr := strings.TrimPrefix(f.gateway, "http://")
	adminAddr := f.logAttr(t, "admin API listening", "addr")
	image := f.st.Instances[0].Image
	doctor := func(extra ...string) (string, error) {
		args := append([]string{"doctor", "--data-dir", f.dataDir, "--namespace", f.st.Namespace, "--ollama-image", image,
			"--addr", gatewayAddr, "--admin-addr", adminAddr, "--chat-ui", "none"}, extra...)
		out, err := exec.Command(corralBin(t), args...).CombinedOutput()
		return string(out), err
	}

	out, err := doctor()
	if err != nil {
		t.Fatalf("doctor beside a healthy corral: %v\n%s", err, out)
	}
	t.Logf("corral doctor:\n%s", out)
	for _, want := range []string{
		"OK    config  ",
		"OK    docker  Docker ",
		"OK    corral  running on " + f.dataDir + ": namespace " + f.st.Namespace + ", 1 of 1 instances healthy",
		"  gpus    ", // OK without a GPU; what it says depends on the build
		"OK    port    --addr " + gatewayAddr + " is in use by the corral running on " + f.dataDir,
		"OK    port    --admin-addr " + adminAddr + " is in use by the corral running on " + f.dataDir,
		"SKIP  domain  no --domain",
		"  clock   ",
		"OK    disk    ",
		"OK    image   " + image + " is present",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q", want)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("doctor failed a check on this machine:\n%s", out)
	}

	// A port someone else holds.
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	out, err = doctor("--addr", other.Addr().String())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("doctor with a port taken: %v, want exit status 1\n%s", err, out)
	}
	if want := "FAIL  port    --addr " + other.Addr().String() + " is in use by another program; fix: stop it"; !strings.Contains(out, want) {
		t.Errorf("doctor output lacks %q:\n%s", want, out)
	}
	if !strings.Contains(out, "corral: doctor: 1 of ") {
		t.Errorf("doctor does not sum up the failure:\n%s", out)
	}
}
