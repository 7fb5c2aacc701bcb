package enginetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Label marks everything tests create, for cleanup.
const Label = "corral.test"

// GoImage is a FROM scratch Docker image of one command of this module,
// for tests that need a container standing in for a real image without a
// registry. Its tag is the first 12 hex digits of the sha256 of the binary
// and the Dockerfile, so an unchanged command reuses its image and a
// changed Dockerfile makes another.
type GoImage struct {
	Repository string // the image name, such as corral-ollama-sim
	Package    string // the command, such as ./cmd/ollama-sim
	// File is the binary's name next to the Dockerfile, which COPYs it.
	File       string
	Dockerfile string

	once      sync.Once
	daemonErr error
	tag       string
	err       error
}

// Build compiles the command statically and builds its image unless an
// image with the same tag exists. It returns the image reference.
func (g *GoImage) Build(ctx context.Context) (string, error) {
	gomod, err := Output(ctx, "", nil, "go", "env", "GOMOD")
	if err != nil {
		return "", fmt.Errorf("%s: find module root: %w", g.Repository, err)
	}
	gomod = strings.TrimSpace(gomod)
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("%s: not inside a Go module", g.Repository)
	}
	root := filepath.Dir(gomod)
	dir, err := os.MkdirTemp("", g.Repository+"-image-")
	if err != nil {
		return "", fmt.Errorf("%s: %w", g.Repository, err)
	}
	defer os.RemoveAll(dir)

	bin := filepath.Join(dir, g.File)
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if _, err := Output(ctx, root, env, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, g.Package); err != nil {
		return "", fmt.Errorf("%s: build %s: %w", g.Repository, g.Package, err)
	}
	sum, err := imageSHA256(bin, g.Dockerfile)
	if err != nil {
		return "", fmt.Errorf("%s: %w", g.Repository, err)
	}
	tag := g.Repository + ":" + sum[:12]
	if _, err := Output(ctx, "", nil, "docker", "image", "inspect", tag); err == nil {
		return tag, nil
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(g.Dockerfile), 0o644); err != nil {
		return "", fmt.Errorf("%s: %w", g.Repository, err)
	}
	if _, err := Output(ctx, dir, nil, "docker", "build", "-q", "-t", tag, "--label", Label+"=true", "."); err != nil {
		return "", fmt.Errorf("%s: docker build: %w", g.Repository, err)
	}
	return tag, nil
}

// Image returns the image, building it once per test process: every test
// shares one build instead of running go build and docker build again.
// It skips the test when no Docker daemon answers and fails it on any
// other error.
func (g *GoImage) Image(t testing.TB) string {
	t.Helper()
	g.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if _, err := Output(ctx, "", nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
			g.daemonErr = err
			return
		}
		g.tag, g.err = g.Build(ctx)
	})
	if g.daemonErr != nil {
		t.Skipf("docker daemon not answering: %v", g.daemonErr)
	}
	if g.err != nil {
		t.Fatal(g.err)
	}
	return g.tag
}

// Output runs a command and returns its stdout; the error carries stderr.
func Output(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// imageSHA256 hashes the binary at path and then the Dockerfile.
func imageSHA256(path, dockerfile string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	io.WriteString(h, dockerfile)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// RunContainer runs image detached (and --rm) on a network of its own,
// both labelled and removed when the test ends, with extra docker run
// arguments (such as -e NAME=VALUE), and returns the container's ID and
// its IP on that network: what a test needs to reach it as corral does.
func RunContainer(t testing.TB, ctx context.Context, prefix, image string, extra ...string) (id, ip string) {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	run := prefix + "-" + hex.EncodeToString(b)
	runLabel := Label + ".run=" + run
	t.Cleanup(func() { removeLabelled(t, runLabel) })
	if _, err := Output(ctx, "", nil, "docker", "network", "create", "--label", Label+"=true", "--label", runLabel, run); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"run", "-d", "--rm", "--label", Label + "=true", "--label", runLabel, "--network", run, "--name", run}, extra...)
	id, err := Output(ctx, "", nil, "docker", append(args, image)...)
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(id)
	ip, err = Output(ctx, "", nil, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id)
	if err != nil {
		t.Fatal(err)
	}
	ip = strings.TrimSpace(ip)
	if net.ParseIP(ip) == nil {
		t.Fatalf("container IP %q", ip)
	}
	return id, ip
}

// removeLabelled removes the containers and networks that carry label.
func removeLabelled(t testing.TB, label string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, kind := range [][]string{{"ps", "-aq"}, {"network", "ls", "-q"}} {
		ids, err := Output(ctx, "", nil, "docker", append(kind, "--filter", "label="+label)...)
		if err != nil {
			t.Logf("cleanup: %v", err)
		}
		if f := strings.Fields(ids); len(f) > 0 {
			rm := []string{"rm", "-f"}
			if kind[0] == "network" {
				rm = []string{"network", "rm"}
			}
			if _, err := Output(ctx, "", nil, "docker", append(rm, f...)...); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	}
}
