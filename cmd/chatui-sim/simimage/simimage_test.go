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

// TestImageServesHealth runs the image on a fresh network as Open WebUI,
// asks the container for /health and /env over its own IP, as corral
// does, and stops it the way Docker does, by SIGTERM.
func TestImageServesHealth(t *testing.T) {
	tag := Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	run := "chatui-simimage-" + randomHex(t)
	runLabel := Label + ".run=" + run
	t.Cleanup(func() { cleanup(t, runLabel) })

	if _, err := output(ctx, "", nil, "docker", "network", "create", "--label", Label+"=true", "--label", runLabel, run); err != nil {
		t.Fatal(err)
	}
	// No SIM_ROLE: the role follows from the variables Open WebUI gets.
	id, err := output(ctx, "", nil, "docker", "run", "-d", "--rm",
		"--label", Label+"=true", "--label", runLabel,
		"--network", run, "--name", run,
		"-e", "OPENAI_API_BASE_URL=http://gateway:8000/v1",
		"-e", "OPENAI_API_KEY=sk-test",
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
			logs, _ := output(context.Background(), "", nil, "docker", "logs", id)
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
	if _, err := output(ctx, "", nil, "docker", "stop", "-t", "10", id); err != nil {
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
