package simimage

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"corral/engine/enginetest"
)

// TestImageServesHealth runs the image on a fresh network as Open WebUI,
// asks the container for /health and /env over its own IP, as corral
// does, and stops it the way Docker does, by SIGTERM.
func TestImageServesHealth(t *testing.T) {
	tag := Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// No SIM_ROLE: the role follows from the variables Open WebUI gets.
	id, ip := enginetest.RunContainer(t, ctx, "chatui-simimage", tag, "-e", "OPENAI_API_BASE_URL=http://gateway:8000/v1", "-e", "OPENAI_API_KEY=sk-test")

	base := "http://" + net.JoinHostPort(ip, "8080")
	client := &http.Client{Timeout: 2 * time.Second}
	var health struct {
		Status bool `json:"status"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(base + "/health")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&health)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			logs, _ := enginetest.Output(context.Background(), "", nil, "docker", "logs", id)
			t.Fatalf("GET %s/health: %v\ncontainer logs:\n%s", base, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !health.Status {
		t.Error(`health: want {"status":true}`)
	}

	var env map[string]string
	resp, err := client.Get(base + "/env")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if env["OPENAI_API_KEY"] != "sk-test" {
		t.Errorf("env %v", env)
	}

	// Open WebUI's data directory exists in the scratch image's root.
	var data struct {
		Dir   string            `json:"dir"`
		Files map[string]string `json:"files"`
	}
	resp, err = client.Get(base + "/data")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&data)
	resp.Body.Close()
	if err != nil || data.Dir != "/app/backend/data" || !strings.Contains(data.Files["starts.log"], "started open-webui") {
		t.Errorf("data %+v, %v", data, err)
	}

	// SIGTERM ends it well inside docker stop's grace period; --rm
	// removes it.
	start := time.Now()
	if _, err := enginetest.Output(ctx, "", nil, "docker", "stop", "-t", "10", id); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("docker stop took %v; the simulator ignored SIGTERM?", d)
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
