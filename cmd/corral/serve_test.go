package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corral/engine"
	"corral/engine/store"
	"corral/gpu"
)

func twoGPUs() gpu.Inventory {
	return gpu.Inventory{
		DriverVersion: "550.54.15", CUDAVersion: "12.4",
		Devices: []gpu.Device{
			{Index: 0, UUID: "GPU-aaaaaaaa-0000-0000-0000-000000000000", Name: "Tesla T4", MemoryTotal: 16 << 30},
			{Index: 1, UUID: "GPU-bbbbbbbb-0000-0000-0000-000000000001", Name: "Tesla T4", MemoryTotal: 16 << 30},
		},
	}
}

// TestServeBadInput: each mistake is a one-line error and a non-zero exit,
// returns at once, and leaves what the store held untouched.
func TestServeBadInput(t *testing.T) {
	dataDir := t.TempDir()
	st, err := store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Settings{GPUs: "1", CPUInstances: 3, OllamaImage: "ollama/ollama:0.17.4", KeepAlive: "10m"}
	if err := engine.SaveSettings(st, want); err != nil {
		t.Fatal(err)
	}
	st.Close()

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	blocker := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(blocker, nil, 0o600)

	base := []string{"serve", "--data-dir", dataDir, "--docker-host", "unix:///nonexistent/docker.sock", "--addr", "127.0.0.1:0", "--chat-addr", "", "--admin-addr", ""}
	cases := []struct {
		name     string
		args     []string
		hold     bool // another corral holds the data dir
		wantErr  string
		wantCode int
	}{
		{"unknown flag", []string{"serve", "--data-dir", dataDir, "--bogus"}, false, "flag provided but not defined: -bogus", 2},
		{"env with bad value", nil, false, "CORRAL_CPU_INSTANCES", 2},
		{"gpu not on host", append(base, "--gpus", "9"), false, "--gpus 9: no GPU with index 9 (this host has GPUs 0-1)", 1},
		{"empty image", append(base, "--ollama-image", ""), false, "--ollama-image is empty", 1},
		{"negative cpu instances", append(base, "--cpu-instances", "-1"), false, "--cpu-instances -1: must be 0 or more", 1},
		{"bad namespace", append(base, "--namespace", "Bad Name"), false, `--namespace "Bad Name"`, 1},
		{"bad keep-alive", append(base, "--keep-alive", "soon"), false, `--keep-alive "soon"`, 1},
		{"unwritable data dir", []string{"serve", "--data-dir", filepath.Join(blocker, "sub")}, false, "choose another with --data-dir", 1},
		{"second serve", base, true, "another corral is using DATA_DIR " + dataDir, 1},
		{"gateway port in use", append(base[:5:5], "--addr", busy.Addr().String(), "--admin-addr", ""), false, "--addr " + busy.Addr().String() + ": bind: address already in use: pick another", 1},
		{"IP address as domain", append(base, "--domain", "203.0.113.7", "--email", "you@example.com"), false, "--domain 203.0.113.7: an IP address cannot have a certificate", 1},
		{"malformed domain", append(base, "--domain", "chat_example..com", "--email", "you@example.com"), false, `--domain "chat_example..com": not a valid DNS name`, 1},
		{"wildcard domain", append(base, "--domain", "*.example.com", "--email", "you@example.com"), false, "wildcard names need the DNS challenge", 1},
		{"no email with Let's Encrypt", append(base, "--domain", "chat.example.com"), false, "--email is required with Let's Encrypt", 1},
		{"bad email", append(base, "--domain", "chat.example.com", "--email", "you"), false, `--email "you": want an address`, 1},
		{"bad CA", append(base, "--domain", "chat.example.com", "--acme-ca", "ftp://ca.example.com"), false, `--acme-ca "ftp://ca.example.com": use letsencrypt, staging, or an ACME directory URL`, 1},
		{"missing CA root", append(base, "--domain", "chat.example.com", "--acme-ca", "https://ca.example.com/dir", "--acme-ca-root", "/nonexistent/root.pem"), false, "--acme-ca-root /nonexistent/root.pem: no such file or directory", 1},
		{"cert without key", append(base, "--domain", "chat.example.com", "--tls-cert", blocker), false, "--tls-cert and --tls-key go together", 1},
		{"bad chat UI", append(base, "--chat-ui", "chatgpt"), false, `--chat-ui "chatgpt": use open-webui, lobechat, lobechat-db or none`, 1},
		{"bad chat address", append(base, "--chat-addr", "3000"), false, `--chat-addr "3000": want host:port`, 1},
		{"chat port in use", append(base, "--chat-addr", busy.Addr().String()), false, "--chat-addr " + busy.Addr().String() + ": bind: address already in use", 1},
		{"bad scheduling", append(base, "--scheduling", "fifo"), false, `--scheduling "fifo": use fair or pass-through`, 1},
		{"queue wait too short", append(base, "--queue-max-wait", "10ms"), false, "--queue-max-wait 10ms: use 1s or more", 1},
		{"empty queue", append(base, "--queue-max", "0"), false, "--queue-max 0: use 1 or more", 1},
		{"bad max body", append(base, "--max-body", "lots"), false, `--max-body "lots": want a size such as 32MiB`, 1},
		{"bad CORS origin", append(base, "--cors-origins", "https://app.example.com,app.example.com"), false, `--cors-origins: CORS origin "app.example.com": want scheme://host[:port]`, 1},
		{"bad trusted proxy", append(base, "--trusted-proxies", "10.0.0.0/8,nginx"), false, `--trusted-proxies "nginx": want an address or a prefix`, 1},
		{"https port in use", append(base, "--domain", "chat.example.com", "--email", "you@example.com", "--https-addr", busy.Addr().String(), "--http-addr", "127.0.0.1:0"), false, "--https-addr " + busy.Addr().String() + ": bind: address already in use: pick another", 1},
		{"http port in use", append(base, "--domain", "chat.example.com", "--email", "you@example.com", "--https-addr", "127.0.0.1:0", "--http-addr", busy.Addr().String()), false, "--http-addr " + busy.Addr().String() + ": bind: address already in use: pick another", 1},
		{"admin port in use", append(base[:len(base)-1:len(base)-1], busy.Addr().String()), false, "--admin-addr " + busy.Addr().String() + ": bind: address already in use: pick another", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				t.Setenv("CORRAL_CPU_INSTANCES", "many")
				args = base
			}
			if tc.hold {
				other, err := store.Open(dataDir)
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
			}
			var out, errOut bytes.Buffer
			a := newApp(&out, &errOut)
			a.discover = twoGPUs
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			err := a.run(ctx, args)
			if err == nil {
				t.Fatalf("no error; stderr: %s", errOut.String())
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %s to fail", time.Since(start))
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if got := exitCode(err); got != tc.wantCode {
				t.Errorf("exit code = %d, want %d", got, tc.wantCode)
			}
		})
	}

	st, err = store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := engine.LoadSettings(st)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("store changed by bad input: %+v, want %+v", got, want)
	}
}

func TestMergeSettingsKeepsStoredUnlessGiven(t *testing.T) {
	stored := engine.Settings{GPUs: "0", CPUInstances: 2, OllamaImage: "a:1", KeepAlive: "1h", NumParallel: 4}
	c, err := parseServe([]string{"--ollama-image", "b:2"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := mergeSettings(stored, c)
	want := stored
	want.OllamaImage = "b:2"
	if got != want {
		t.Fatalf("merged = %+v, want %+v", got, want)
	}
}

func TestEnvEquivalents(t *testing.T) {
	t.Setenv("CORRAL_NAMESPACE", "staging")
	t.Setenv("CORRAL_CPU_INSTANCES", "4")
	c, err := parseServe([]string{"--cpu-instances", "2"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "staging" {
		t.Errorf("namespace = %q, want staging from CORRAL_NAMESPACE", c.Namespace)
	}
	if c.settings.CPUInstances != 2 {
		t.Errorf("cpu instances = %d: the flag must win over the environment", c.settings.CPUInstances)
	}
	if !c.explicit["namespace"] || !c.explicit["cpu-instances"] || c.explicit["gpus"] {
		t.Errorf("explicit = %v", c.explicit)
	}
}

func TestGPUsCommand(t *testing.T) {
	var out bytes.Buffer
	a := newApp(&out, &out)
	a.discover = twoGPUs
	if err := a.run(context.Background(), []string{"gpus"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"driver 550.54.15, CUDA 12.4", "GPU-aaaaaaaa-0000-0000-0000-000000000000", "Tesla T4", "16.0 GiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("gpus output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	a.discover = func() gpu.Inventory { return gpu.Inventory{Reason: "NVML not found"} }
	if err := a.run(context.Background(), []string{"gpus"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no GPUs: NVML not found") {
		t.Errorf("no-GPU output: %s", out.String())
	}
}

func TestStatusWithoutDaemon(t *testing.T) {
	var out bytes.Buffer
	err := newApp(&out, &out).run(context.Background(), []string{"status", "--data-dir", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "corral is not running") {
		t.Fatalf("err = %v", err)
	}
}
