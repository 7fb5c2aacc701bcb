// Package simimage builds a Docker image of the chat UI stand-in
// (cmd/chatui-sim) for integration tests that need containers standing in
// for Open WebUI, LobeChat, and LobeChat's PostgreSQL and MinIO. The image
// is FROM scratch, so no registry is needed. Its entrypoint is the binary
// with no CMD: the role comes from SIM_ROLE, a first argument naming it,
// or the variables the real image would be given (see cmd/chatui-sim).
package simimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Repository is the image name; the tag is the first 12 hex digits of the
// binary's sha256, so an unchanged simulator reuses its image.
const Repository = "corral-chatui-sim"

// Label marks everything tests create, for cleanup.
const Label = "corral.test"

const dockerfile = `FROM scratch
COPY chatui-sim /chatui-sim
EXPOSE 8080 3210 5432 9000
LABEL corral.test=true
ENTRYPOINT ["/chatui-sim"]
`

// Build compiles the simulator statically and builds its image unless an
// image with the same tag exists. It returns the image reference.
func Build(ctx context.Context) (string, error) {
	gomod, err := output(ctx, "", nil, "go", "env", "GOMOD")
	if err != nil {
		return "", fmt.Errorf("simimage: find module root: %w", err)
	}
	gomod = strings.TrimSpace(gomod)
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("simimage: not inside a Go module")
	}
	root := filepath.Dir(gomod)

	dir, err := os.MkdirTemp("", "chatui-sim-image-")
	if err != nil {
		return "", fmt.Errorf("simimage: %w", err)
	}
	defer os.RemoveAll(dir)

	bin := filepath.Join(dir, "chatui-sim")
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if _, err := output(ctx, root, env, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, "./cmd/chatui-sim"); err != nil {
		return "", fmt.Errorf("simimage: build simulator: %w", err)
	}
	sum, err := fileSHA256(bin)
	if err != nil {
		return "", fmt.Errorf("simimage: %w", err)
	}
	tag := Repository + ":" + sum[:12]

	if _, err := output(ctx, "", nil, "docker", "image", "inspect", tag); err == nil {
		return tag, nil
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", fmt.Errorf("simimage: %w", err)
	}
	if _, err := output(ctx, dir, nil, "docker", "build", "-q", "-t", tag, "--label", Label+"=true", "."); err != nil {
		return "", fmt.Errorf("simimage: docker build: %w", err)
	}
	return tag, nil
}

// built caches the one image a test process builds. It is the package's
// only mutable state, the accepted exception for a test helper: every test
// in the process shares one build instead of running go build and docker
// build again.
var built struct {
	once      sync.Once
	daemonErr error
	tag       string
	err       error
}

// Image returns the simulator image, building it once per test process.
// It skips the test when no Docker daemon answers and fails it on any
// other error.
func Image(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if _, err := output(ctx, "", nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
			built.daemonErr = err
			return
		}
		built.tag, built.err = Build(ctx)
	})
	if built.daemonErr != nil {
		t.Skipf("docker daemon not answering: %v", built.daemonErr)
	}
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.tag
}

// output runs a command and returns its stdout; the error carries stderr.
func output(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
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

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
