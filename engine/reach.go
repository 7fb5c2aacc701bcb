package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// Reach is how corral addresses an instance: the container's IP on the
// private network (corral on the host), its name (corral in a container on
// that network), or a port published on 127.0.0.1 only (hosts that cannot
// route to container IPs, such as Docker Desktop). Ollama's port is never
// published on any other address: Ollama has no authentication.
type Reach string

const (
	ReachAuto     Reach = "auto"
	ReachIP       Reach = "ip"
	ReachName     Reach = "name"
	ReachLoopback Reach = "loopback"
)

// ParseReach validates a --reach value.
func ParseReach(s string) (Reach, error) {
	switch r := Reach(s); r {
	case ReachAuto, ReachIP, ReachName, ReachLoopback:
		return r, nil
	}
	return "", fmt.Errorf("--reach %q: use auto, ip, name or loopback", s)
}

// resolve turns auto into a concrete mode for this host. Name mode needs
// corral's own container on the network; where that cannot be done (a
// /.dockerenv that is not a Docker container of this engine), auto falls
// back to IPs.
func (r Reach) resolve(ctx context.Context, d docker, network string, log *slog.Logger) Reach {
	switch r {
	case ReachName:
		if err := d.ConnectSelf(ctx, network); err != nil {
			log.Warn("instances may be unreachable by name", "err", err)
		}
		return r
	case ReachAuto:
	default:
		return r
	}
	if inContainer() {
		if err := d.ConnectSelf(ctx, network); err == nil {
			return ReachName
		}
	}
	if d.DesktopLike(ctx) {
		return ReachLoopback
	}
	return ReachIP
}

func inContainer() bool {
	_, err := os.Stat("/.dockerenv")
	return err == nil
}

// selfContainerID is the container corral runs in: Docker sets the
// hostname to the short container ID unless told otherwise.
func selfContainerID() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("find own container: %w", err)
	}
	return h, nil
}

// endpoint is the base URL of what a container serves on port: an
// instance's Ollama API, or a companion's.
func (r Reach) endpoint(c ctr, port int) string {
	switch r {
	case ReachName:
		return fmt.Sprintf("http://%s:%d", c.Name, port)
	case ReachLoopback:
		if c.LoopbackPort == "" {
			return ""
		}
		return "http://127.0.0.1:" + c.LoopbackPort
	default:
		if c.IP == "" {
			return ""
		}
		return fmt.Sprintf("http://%s:%d", c.IP, port)
	}
}
