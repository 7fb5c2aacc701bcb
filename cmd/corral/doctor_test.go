package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corral/engine"
	"corral/gpu"
)

func doctorConfig(t *testing.T, args ...string) serveConfig {
	t.Helper()
	c, err := parseServeAs("doctor", append([]string{"--data-dir", t.TempDir()}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDoctorGPUs(t *testing.T) {
	if !gpu.NVML {
		t.Skip("built without NVML (CGO_ENABLED=0): the GPU checks say only that")
	}
	twoGPUs := gpu.Inventory{DriverVersion: "550.1", CUDAVersion: "12.4", Devices: []gpu.Device{
		{Index: 0, UUID: "GPU-a", Name: "H200"}, {Index: 1, UUID: "GPU-b", Name: "H200"}}}
	withNvidia := &engine.DockerInfo{Runtimes: []string{"io.containerd.runc.v2", "nvidia", "runc"}}
	plain := &engine.DockerInfo{Runtimes: []string{"io.containerd.runc.v2", "runc"}}
	cases := []struct {
		name   string
		args   []string
		inv    gpu.Inventory
		docker *engine.DockerInfo
		hook   bool
		want   []string // "LEVEL check msg-part", one per finding
	}{
		{"no GPU", nil, gpu.Inventory{Reason: "NVML not found"}, plain, false, []string{"OK gpus none (NVML not found): Ollama runs on CPU"}},
		{"GPUs and the nvidia runtime", nil, twoGPUs, withNvidia, false, []string{"OK gpus 2: 0 H200, 1 H200 (driver 550.1, CUDA 12.4)", "OK nvidia Docker has the nvidia runtime"}},
		{"GPUs, only the toolkit's hook", nil, twoGPUs, plain, true, []string{"OK gpus 2:", "OK nvidia the NVIDIA Container Toolkit's hook is installed"}},
		{"GPUs, no runtime", nil, twoGPUs, plain, false, []string{"OK gpus 2:", "FAIL nvidia GPUs found, but Docker has no nvidia runtime"}},
		{"GPUs, Docker down", nil, twoGPUs, nil, false, []string{"OK gpus 2:", "SKIP nvidia Docker's runtimes not checked"}},
		{"GPUs unused", []string{"--gpus", "none"}, twoGPUs, plain, false, []string{"OK gpus 2:"}},
		{"a GPU that is not there", []string{"--gpus", "5"}, twoGPUs, withNvidia, false, []string{"FAIL gpus "}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := gpuFindings(doctorConfig(t, c.args...), c.inv, c.docker, c.hook)
			if len(got) != len(c.want) {
				t.Fatalf("findings %v, want %d", got, len(c.want))
			}
			for i, f := range got {
				line := f.level.String() + " " + f.check + " " + f.msg
				if !strings.HasPrefix(line, c.want[i]) {
					t.Errorf("finding %d = %q, want it to start %q", i, line, c.want[i])
				}
				if f.level == levelFail && f.fix == "" {
					t.Errorf("finding %d fails without a fix", i)
				}
			}
		})
	}
}

func TestDoctorDomains(t *testing.T) {
	lookups := map[string][]net.IPAddr{
		"here.example.com":  {{IP: net.ParseIP("127.0.0.1")}},
		"there.example.com": {{IP: net.ParseIP("192.0.2.7")}},
	}
	lookup := func(_ context.Context, host string) ([]net.IPAddr, error) {
		if a, ok := lookups[host]; ok {
			return a, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"none", nil, []string{"SKIP no --domain"}},
		{"resolves here", []string{"--domain", "here.example.com"}, []string{"OK here.example.com resolves to 127.0.0.1, an address of this host"}},
		{"resolves elsewhere", []string{"--domain", "there.example.com"}, []string{"WARN there.example.com resolves to 192.0.2.7, not an address of this host"}},
		{"does not resolve", []string{"--domain", "nowhere.example.com", "--api-domain", "here.example.com"},
			[]string{"FAIL nowhere.example.com does not resolve", "OK here.example.com resolves"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--email", "admin@example.com"}, c.args...)
			d := &doctor{cfg: doctorConfig(t, args...), lookup: lookup}
			got := d.checkDomains(context.Background())
			if len(got) != len(c.want) {
				t.Fatalf("findings %v, want %d", got, len(c.want))
			}
			for i, f := range got {
				if line := f.level.String() + " " + f.msg; !strings.HasPrefix(line, c.want[i]) {
					t.Errorf("finding %d = %q, want it to start %q", i, line, c.want[i])
				}
			}
		})
	}
}

func TestDoctorPorts(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"free", []string{"--addr", freeAddr, "--admin-addr", "", "--chat-ui", "none"}, []string{"OK --addr " + freeAddr + " is free"}},
		{"taken by another program", []string{"--addr", taken.Addr().String(), "--admin-addr", "", "--chat-ui", "none"},
			[]string{"FAIL --addr " + taken.Addr().String() + " is in use by another program"}},
		{"not an address of this host", []string{"--addr", "192.0.2.1:8080", "--admin-addr", "", "--chat-ui", "none"}, []string{"FAIL --addr 192.0.2.1:8080: "}},
		{"every listener of a domain", []string{"--domain", "chat.example.com", "--email", "a@example.com", "--addr", freeAddr, "--https-addr", freeAddr, "--http-addr", freeAddr, "--admin-addr", freeAddr},
			[]string{"OK --addr", "OK --https-addr", "OK --http-addr", "OK --admin-addr"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &doctor{cfg: doctorConfig(t, c.args...)}
			got := d.checkPorts(context.Background())
			if len(got) != len(c.want) {
				t.Fatalf("findings %v, want %d", got, len(c.want))
			}
			for i, f := range got {
				if line := f.level.String() + " " + f.msg; !strings.HasPrefix(line, c.want[i]) {
					t.Errorf("finding %d = %q, want it to start %q", i, line, c.want[i])
				}
			}
		})
	}
}

func TestDoctorClock(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		docker time.Time
		want   string
	}{
		{"with Docker's", now.Add(time.Second), "matches Docker's"},
		{"ahead of Docker's", now.Add(-time.Minute), "Docker's clock differs from this host's by -1m0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &doctor{cfg: doctorConfig(t), now: func() time.Time { return now }, docker: &engine.DockerInfo{SystemTime: c.docker}}
			f := d.checkClock()
			if !strings.Contains(f.msg, c.want) {
				t.Fatalf("clock: %v, want %q", f, c.want)
			}
		})
	}
}

// TestDoctorDockerUnreachable: with DOCKER_HOST at a socket that is not
// there, doctor says Docker is not reachable, how to fix it, and fails.
func TestDoctorDockerUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "no-docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	var out bytes.Buffer
	a := newApp(&out, &out)
	a.discover = func() gpu.Inventory { return gpu.Inventory{Reason: "test: no GPUs"} }
	err := a.run(context.Background(), []string{"doctor", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--admin-addr", "", "--chat-ui", "none"})
	if err == nil || exitCode(err) != 1 || errors.Is(err, errUsage) {
		t.Fatalf("doctor with Docker down: err %v, want a failure (exit 1)\n%s", err, &out)
	}
	text := out.String()
	for _, want := range []string{
		"FAIL  docker  Docker is not reachable at unix://" + sock + ": dial unix " + sock,
		"; fix: start Docker (sudo systemctl start docker)",
		"SKIP  image   images not checked (ollama/ollama:latest): Docker is not reachable",
		"OK    config",
		"OK    gpus    none", // what follows depends on the build (NVML or not)
		"OK    port    --addr 127.0.0.1:0 is free",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, text)
		}
	}
}

// TestDoctorConfig: a configuration serve would refuse is a failure line,
// and the other checks still run.
func TestDoctorConfig(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	var out bytes.Buffer
	err := newApp(&out, &out).run(context.Background(), []string{"doctor", "--data-dir", t.TempDir(), "--namespace", "Bad Name", "--addr", "127.0.0.1:0", "--admin-addr", ""})
	if err == nil {
		t.Fatalf("doctor accepted a bad namespace:\n%s", &out)
	}
	if !strings.Contains(out.String(), `FAIL  config  --namespace "Bad Name"`) || !strings.Contains(out.String(), "SKIP  domain") {
		t.Fatalf("doctor output:\n%s", &out)
	}
}
