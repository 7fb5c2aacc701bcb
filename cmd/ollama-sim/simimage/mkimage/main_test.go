package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"corral/engine/enginetest"
)

// TestRunTagsPacedImage builds the image for people under a tag of the
// test's own and checks it is the paced simulator.
func TestRunTagsPacedImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := enginetest.Output(ctx, "", nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		t.Skipf("docker daemon not answering: %v", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	tag := "corral-ollama-sim:mkimage-test-" + hex.EncodeToString(b)
	t.Cleanup(func() { enginetest.Output(context.Background(), "", nil, "docker", "rmi", tag) })

	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"-tag", tag}, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	if out.String() != tag+"\n" {
		t.Errorf("stdout %q, want the tag alone", out.String())
	}
	env := enginetest.Docker(t, "image", "inspect", "-f", "{{json .Config.Env}}", tag)
	for _, want := range []string{"OLLAMA_HOST=0.0.0.0:11434", "SIM_TOKEN_INTERVAL=50ms"} {
		if !strings.Contains(env, want) {
			t.Errorf("image env %s lacks %s", env, want)
		}
	}
}

func TestRunRejectsArguments(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"extra"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `"extra"`) {
		t.Errorf("run extra = %v, want an error naming the argument", err)
	}
}
