package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"corral/cmd/ollama-sim/simimage"
	"corral/engine/enginetest"
	"corral/ui"
)

// TestSettingsDomainThenRestart: a corral started without a domain gets
// one from the settings API (as the settings page sends it), refuses a
// bad one without losing the stored choice, and after a restart in place
// (same process, containers adopted, not restarted) serves HTTPS with a
// certificate for it.
func TestSettingsDomainThenRestart(t *testing.T) {
	const domain = "door.settings.corral.test"
	ca, args := pebbleDomain(t, domain)
	var keep []string // everything but --domain and --email: the page gives those
	for i := 0; i < len(args); i += 2 {
		if args[i] != "--domain" && args[i] != "--email" {
			keep = append(keep, args[i], args[i+1])
		}
	}
	dataDir := t.TempDir()
	p := startServe(t, dataDir, append([]string{"--namespace", enginetest.Namespace(t), "--cpu-instances", "1", "--ollama-image", simimage.Image(t)}, keep...)...)
	t.Parallel()
	before := p.waitStatus(t, "1 healthy instance", 60*time.Second, allHealthy(1))
	d := newDaemon(dataDir)
	ctx := context.Background()

	var ch ui.FrontDoorChoice
	if err := d.getJSON(ctx, "/api/v1/settings/frontdoor", &ch); err != nil || ch.Domain != "" || !ch.Fixed["acme-ca"] || ch.Fixed["domain"] || len(ch.Pending) > 0 {
		t.Fatalf("before: %+v %v", ch, err)
	}
	err := d.do(ctx, http.MethodPut, "/api/v1/settings/frontdoor", map[string]any{"domain": "not a domain!"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--domain") {
		t.Fatalf("a bad domain: %v", err)
	}
	if err := d.do(ctx, http.MethodPut, "/api/v1/settings/frontdoor", map[string]any{"domain": domain, "email": "owner@corral.test", "acme_ca": "staging"}, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Domain != domain || len(ch.Pending) == 0 || ch.CA != ca.DirectoryURL {
		t.Fatalf("saved: %+v (the CA was given as a flag: it stays)", ch)
	}

	pid := p.cmd.Process.Pid
	var ack map[string]any
	if err := d.do(ctx, http.MethodPost, "/api/v1/restart", nil, &ack); err != nil {
		t.Fatal(err)
	}
	p.logAttr(t, "starting again in place with the saved settings; the containers keep running", "msg")
	waitCertificate(t, dataDir)
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("corral exited instead of starting again: %v", err)
	default:
	}
	if p.cmd.Process.Pid != pid {
		t.Fatal("corral did not start again in the same process")
	}
	after := p.waitStatus(t, "the instance adopted and healthy", 60*time.Second, allHealthy(1))
	if after.Instances[0].ContainerID != before.Instances[0].ContainerID {
		t.Fatalf("the instance was replaced: %s, then %s", before.Instances[0].ContainerID, after.Instances[0].ContainerID)
	}
	resp, err := ca.Client(t).Get(fmt.Sprintf("https://%s:%d/v1/models", domain, ca.TLSPort))
	if err != nil {
		t.Fatalf("HTTPS for the domain from the settings: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/v1/models without a key over HTTPS: %d, want the gateway's 401", resp.StatusCode)
	}
	ch = ui.FrontDoorChoice{} // what the answer leaves out must not stay
	if err := d.getJSON(ctx, "/api/v1/settings/frontdoor", &ch); err != nil || len(ch.Pending) > 0 || ch.Domain != domain {
		t.Fatalf("after the restart: %+v %v", ch, err)
	}
}
