package simimage

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"corral/engine/enginetest"
)

// TestImageServesVersion runs the image on a fresh network and asks the
// container for /api/version over its own IP, as corral does.
func TestImageServesVersion(t *testing.T) {
	tag := Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	id, ip := enginetest.RunContainer(t, ctx, "simimage", tag, "-e", "SIM_VERSION=0.17.4-test")

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
			logs, _ := enginetest.Output(context.Background(), "", nil, "docker", "logs", id)
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
