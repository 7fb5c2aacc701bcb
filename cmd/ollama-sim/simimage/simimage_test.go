package simimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestImageServesVersion runs the image on a fresh network and asks the
// container for /api/version over its own IP, as corral does.
func TestImageServesVersion(t *testing.T) {
	tag := Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	run := "simimage-" + randomHex(t)
	runLabel := Label + ".run=" + run
	t.Cleanup(func() { cleanup(t, runLabel) })

	if _, err := output(ctx, "", nil, "docker", "network", "create", "--label", Label+"=true", "--label", runLabel, run); err != nil {
		t.Fatal(err)
	}
	id, err := output(ctx, "", nil, "docker", "run", "-d", "--rm",
		"--label", Label+"=true", "--label", runLabel,
		"--network", run, "--name", run,
		"-e", "SIM_VERSION=0.17.4-test",
		tag)
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(id)

	ip, err := output(ctx, "", nil, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id)
	if err != nil {
		t.Fatal(err)
	}
	ip = strings.TrimSpace(ip)
	if net.ParseIP(ip) == nil {
		t.Fatalf("container IP %q", ip)
	}

	url := "http://" + net.JoinHostPort(ip, "11434") + "/api/version"
	client := &http.Client{Timeout: 2 * time.Second}
	var version struct {
		Version string `json:"version"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&version)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			logs, _ := output(context.Background(), "", nil, "docker", "logs", id)
			t.Fatalf("GET %s: %v\ncontainer logs:\n%s", url, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if version.Version != "0.17.4-test" {
		t.Errorf("version = %q, want 0.17.4-test", version.Version)
	}

	// A second build of the same binary reuses the image.
	again, err := Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again != tag {
		t.Errorf("rebuild gave %s, want %s", again, tag)
	}
}

// cleanup removes the containers and networks of one test run.
func cleanup(t *testing.T, label string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, err := output(ctx, "", nil, "docker", "ps", "-aq", "--filter", "label="+label)
	if err != nil {
		t.Logf("cleanup: %v", err)
	}
	if f := strings.Fields(ids); len(f) > 0 {
		if _, err := output(ctx, "", nil, "docker", append([]string{"rm", "-f"}, f...)...); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
	nets, err := output(ctx, "", nil, "docker", "network", "ls", "-q", "--filter", "label="+label)
	if err != nil {
		t.Logf("cleanup: %v", err)
	}
	if f := strings.Fields(nets); len(f) > 0 {
		if _, err := output(ctx, "", nil, "docker", append([]string{"network", "rm"}, f...)...); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
