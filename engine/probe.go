package engine

import (
	"context"
	"time"
)

// DockerInfo is what corral doctor reports of the Docker Engine.
type DockerInfo struct {
	Host            string // the address dialled, such as unix:///var/run/docker.sock
	ServerVersion   string // the engine's version, such as 20.10.24
	APIVersion      string // the engine's API version, such as 1.41
	ClientVersion   string // the API version corral speaks with it, after negotiation
	OperatingSystem string
	RootDir         string // DockerRootDir: where images and volumes live
	Runtimes        []string
	DefaultRuntime  string
	SystemTime      time.Time // the engine's clock when it answered; zero if it did not say
}

// Probe looks at a Docker Engine without a namespace or desired state: the
// checks of corral doctor.
type Probe struct {
	d *dockerClient
}

// NewProbe makes a client of the engine at host (empty: DOCKER_HOST or the
// default socket). It dials nothing yet.
func NewProbe(host string) (*Probe, error) {
	d, err := newDocker(host, "")
	if err != nil {
		return nil, err
	}
	return &Probe{d: d}, nil
}

// Info pings the engine and reads its version, runtimes, clock and root
// directory. On error Host is still set.
func (p *Probe) Info(ctx context.Context) (DockerInfo, error) { return p.d.Info(ctx) }

// HasImage reports whether the engine holds image locally.
func (p *Probe) HasImage(ctx context.Context, image string) (bool, error) {
	return p.d.HasImage(ctx, image)
}

// Close releases the client.
func (p *Probe) Close() error { return p.d.Close() }
