package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// This file is the only one that speaks the Docker Engine API. The
// reconciler sees Docker through the docker interface and these plain types.

// ctr is what the engine needs to know of one container.
type ctr struct {
	ID           string
	Name         string
	Labels       map[string]string
	Image        string
	Status       string // created, running, restarting, exited, dead, paused, removing
	Running      bool
	ExitCode     int
	OOMKilled    bool
	Error        string
	StartedAt    time.Time
	FinishedAt   time.Time
	RestartCount int
	IP           string // address on the namespace's network
	LoopbackPort string // published 127.0.0.1 port, when reach is loopback
}

// createSpec is everything needed to create one container.
type createSpec struct {
	Name    string
	Image   string
	Env     map[string]string
	Labels  map[string]string
	GPU     string // device UUID, empty for none
	Network string
	Volume  string // named volume, mounted at Mount
	Mount   string
	Port    int      // the port it serves
	Publish bool     // publish Port on 127.0.0.1, on a port Docker picks
	Cmd     []string // empty: the image's own
	Hosts   []string // extra /etc/hosts entries, "name:address"
}

// pullProgress is one update of an image pull.
type pullProgress struct {
	Status     string
	Done, Size int64 // bytes over all layers seen so far
}

// event is a container event for our namespace.
type event struct {
	Action string
	ID     string
	Name   string
}

// vol is what the engine needs to know of one volume.
type vol struct {
	Name   string
	Labels map[string]string
}

// docker is the narrow view of the Docker Engine the reconciler needs.
type docker interface {
	Ping(ctx context.Context) error
	DesktopLike(ctx context.Context) bool
	EnsureNetwork(ctx context.Context, name string, labels map[string]string) error
	NetworkGateway(ctx context.Context, name string) (string, error)
	EnsureVolume(ctx context.Context, name string, labels map[string]string) error
	// VolumeLabels and NetworkLabels answer ok false when there is none.
	VolumeLabels(ctx context.Context, name string) (labels map[string]string, ok bool, err error)
	NetworkLabels(ctx context.Context, name string) (labels map[string]string, ok bool, err error)
	Volumes(ctx context.Context, namespace string) ([]vol, error)
	RemoveVolume(ctx context.Context, name string) error
	RemoveNetwork(ctx context.Context, name string) error
	List(ctx context.Context, namespace string) ([]ctr, error)
	Inspect(ctx context.Context, id string) (ctr, error)
	HasImage(ctx context.Context, image string) (bool, error)
	Pull(ctx context.Context, image string, progress func(pullProgress)) error
	Create(ctx context.Context, s createSpec) (string, error)
	Start(ctx context.Context, id string) error
	Restart(ctx context.Context, id string, stopTimeout time.Duration) error
	Remove(ctx context.Context, id string, stopTimeout time.Duration) error
	Events(ctx context.Context, namespace string) (<-chan event, <-chan error)
	Logs(ctx context.Context, id string, tail int, follow bool) (io.ReadCloser, error)
	ConnectSelf(ctx context.Context, networkName string) error
	Close() error
}

type dockerClient struct {
	c       *client.Client
	network string // the namespace network, for reading container IPs
}

var _ docker = (*dockerClient)(nil)

// newDocker connects to the engine named by host (empty: DOCKER_HOST or the
// default socket) and negotiates the API version, since engines in the field
// range over many versions.
func newDocker(host, networkName string) (*dockerClient, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &dockerClient{c: c, network: networkName}, nil
}

func (d *dockerClient) Close() error { return d.c.Close() }

func (d *dockerClient) Ping(ctx context.Context) error {
	_, err := d.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true, ForceNegotiate: true})
	return err
}

// Info pings the engine, negotiating the API version, and reads what
// corral doctor reports of it.
func (d *dockerClient) Info(ctx context.Context) (DockerInfo, error) {
	ping, err := d.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true, ForceNegotiate: true})
	if err != nil {
		return DockerInfo{Host: d.c.DaemonHost()}, err
	}
	res, err := d.c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return DockerInfo{Host: d.c.DaemonHost()}, fmt.Errorf("docker info: %w", err)
	}
	in := res.Info
	out := DockerInfo{
		Host:            d.c.DaemonHost(),
		ServerVersion:   in.ServerVersion,
		APIVersion:      ping.APIVersion,
		ClientVersion:   d.c.ClientVersion(),
		OperatingSystem: in.OperatingSystem,
		RootDir:         in.DockerRootDir,
		DefaultRuntime:  in.DefaultRuntime,
	}
	for name := range in.Runtimes {
		out.Runtimes = append(out.Runtimes, name)
	}
	slices.Sort(out.Runtimes)
	if t, err := time.Parse(time.RFC3339Nano, in.SystemTime); err == nil {
		out.SystemTime = t
	}
	return out, nil
}

// DesktopLike reports engines whose container IPs the host cannot route to
// (Docker Desktop runs containers in a VM).
func (d *dockerClient) DesktopLike(ctx context.Context) bool {
	info, err := d.c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false
	}
	return strings.Contains(info.Info.OperatingSystem, "Docker Desktop")
}

func (d *dockerClient) EnsureNetwork(ctx context.Context, name string, labels map[string]string) error {
	if _, err := d.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	_, err := d.c.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: labels})
	if err != nil && !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	return nil
}

// NetworkGateway is the host's address on a bridge network: where its
// containers reach a service on the host.
func (d *dockerClient) NetworkGateway(ctx context.Context, name string) (string, error) {
	res, err := d.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect network %s: %w", name, err)
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.Is4() {
			return c.Gateway.String(), nil
		}
	}
	return "", fmt.Errorf("network %s has no IPv4 gateway", name)
}

func (d *dockerClient) EnsureVolume(ctx context.Context, name string, labels map[string]string) error {
	// Volume create is idempotent for an existing name with the same driver.
	if _, err := d.c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels}); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

func (d *dockerClient) VolumeLabels(ctx context.Context, name string) (map[string]string, bool, error) {
	res, err := d.c.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	return res.Volume.Labels, true, nil
}

func (d *dockerClient) NetworkLabels(ctx context.Context, name string) (map[string]string, bool, error) {
	res, err := d.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("inspect network %s: %w", name, err)
	}
	return res.Network.Labels, true, nil
}

// Volumes lists the volumes labelled with namespace.
func (d *dockerClient) Volumes(ctx context.Context, namespace string) ([]vol, error) {
	f := make(client.Filters).Add("label", LabelNamespace+"="+namespace)
	res, err := d.c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := make([]vol, 0, len(res.Items))
	for _, v := range res.Items {
		out = append(out, vol{Name: v.Name, Labels: v.Labels})
	}
	return out, nil
}

func (d *dockerClient) RemoveVolume(ctx context.Context, name string) error {
	if _, err := d.c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

func (d *dockerClient) RemoveNetwork(ctx context.Context, name string) error {
	if _, err := d.c.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

func (d *dockerClient) List(ctx context.Context, namespace string) ([]ctr, error) {
	f := make(client.Filters).Add("label", LabelManaged+"=true", LabelNamespace+"="+namespace)
	res, err := d.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]ctr, 0, len(res.Items))
	for _, s := range res.Items {
		// The summary lacks exit details and start times; inspect each one.
		c, err := d.Inspect(ctx, s.ID)
		if cerrdefs.IsNotFound(err) {
			continue // removed between list and inspect
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (d *dockerClient) Inspect(ctx context.Context, id string) (ctr, error) {
	res, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return ctr{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	in := res.Container
	c := ctr{ID: in.ID, Name: strings.TrimPrefix(in.Name, "/"), RestartCount: in.RestartCount}
	if in.Config != nil {
		c.Labels = in.Config.Labels
		c.Image = in.Config.Image
	}
	if st := in.State; st != nil {
		c.Status = string(st.Status)
		c.Running = st.Running
		c.ExitCode = st.ExitCode
		c.OOMKilled = st.OOMKilled
		c.Error = st.Error
		c.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
		c.FinishedAt, _ = time.Parse(time.RFC3339Nano, st.FinishedAt)
	}
	if ns := in.NetworkSettings; ns != nil {
		if ep, ok := ns.Networks[d.network]; ok && ep != nil && ep.IPAddress.IsValid() {
			c.IP = ep.IPAddress.String()
		}
		// corral publishes at most the one port a container serves.
		for _, bs := range ns.Ports {
			for _, b := range bs {
				if b.HostPort != "" {
					c.LoopbackPort = b.HostPort
				}
			}
		}
	}
	return c, nil
}

func (d *dockerClient) HasImage(ctx context.Context, image string) (bool, error) {
	_, err := d.c.ImageInspect(ctx, image)
	if err == nil {
		return true, nil
	}
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", image, err)
}

// Pull pulls image, reporting byte progress summed over layers. Docker
// reports a failed pull inside the stream; that message is the error.
func (d *dockerClient) Pull(ctx context.Context, image string, progress func(pullProgress)) error {
	resp, err := d.c.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", image, err)
	}
	defer resp.Close()
	type layer struct{ cur, total int64 }
	layers := map[string]layer{}
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pull %s: %w", image, err)
		}
		if msg.Error != nil {
			return fmt.Errorf("pull %s: %s", image, msg.Error.Message)
		}
		if msg.Progress != nil && msg.ID != "" && msg.Status == "Downloading" {
			layers[msg.ID] = layer{msg.Progress.Current, msg.Progress.Total}
		}
		if msg.Status == "Download complete" || msg.Status == "Pull complete" || msg.Status == "Already exists" {
			if l, ok := layers[msg.ID]; ok {
				layers[msg.ID] = layer{l.total, l.total}
			}
		}
		var p pullProgress
		p.Status = msg.Status
		for _, l := range layers {
			p.Done += l.cur
			p.Size += l.total
		}
		progress(p)
	}
	return nil
}

func (d *dockerClient) Create(ctx context.Context, s createSpec) (string, error) {
	port := network.MustParsePort(fmt.Sprintf("%d/tcp", s.Port))
	env := make([]string, 0, len(s.Env))
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	cfg := &container.Config{
		Image:        s.Image,
		Env:          env,
		Labels:       s.Labels,
		ExposedPorts: network.PortSet{port: {}},
		Cmd:          s.Cmd,
	}
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(s.Network),
		// unless-stopped: Docker restarts a crashed Ollama by itself and after a
		// host reboot, even while corral is down; corral restarts the rest.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		ExtraHosts:    s.Hosts,
	}
	if s.Volume != "" {
		host.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: s.Volume, Target: s.Mount}}
	}
	if s.GPU != "" {
		host.DeviceRequests = []container.DeviceRequest{{
			Driver:       "nvidia",
			DeviceIDs:    []string{s.GPU},
			Capabilities: [][]string{{"gpu"}},
		}}
	}
	if s.Publish {
		host.PortBindings = network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
	}
	net := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Network: {}}}
	res, err := d.c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: s.Name, Config: cfg, HostConfig: host, NetworkingConfig: net})
	if err != nil {
		return "", fmt.Errorf("create %s: %w", s.Name, err)
	}
	return res.ID, nil
}

func (d *dockerClient) Start(ctx context.Context, id string) error {
	if _, err := d.c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", id, explainStart(err))
	}
	return nil
}

// explainStart turns Docker's message for a GPU request on a host without
// the NVIDIA container runtime into one that says what to do.
func explainStart(err error) error {
	if strings.Contains(err.Error(), "could not select device driver") {
		return fmt.Errorf("%w (the NVIDIA Container Toolkit is not installed or Docker was not restarted after installing it; or run with --gpus none)", err)
	}
	return err
}

func (d *dockerClient) Restart(ctx context.Context, id string, stopTimeout time.Duration) error {
	secs := int(stopTimeout / time.Second)
	if _, err := d.c.ContainerRestart(ctx, id, client.ContainerRestartOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("restart %s: %w", id, err)
	}
	return nil
}

func (d *dockerClient) Remove(ctx context.Context, id string, stopTimeout time.Duration) error {
	secs := int(stopTimeout / time.Second)
	if _, err := d.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if _, err := d.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}

func (d *dockerClient) Events(ctx context.Context, namespace string) (<-chan event, <-chan error) {
	f := make(client.Filters).Add("type", string(events.ContainerEventType)).Add("label", LabelNamespace+"="+namespace)
	res := d.c.Events(ctx, client.EventsListOptions{Filters: f})
	out := make(chan event)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-res.Messages:
				ev := event{Action: string(m.Action), ID: m.Actor.ID, Name: m.Actor.Attributes["name"]}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case err := <-res.Err:
				if err == nil {
					err = errors.New("event stream closed")
				}
				errc <- err
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}

// ConnectSelf attaches the container corral runs in to the network, so
// instances are reachable by name. Already connected is fine.
func (d *dockerClient) ConnectSelf(ctx context.Context, networkName string) error {
	self, err := selfContainerID()
	if err != nil {
		return err
	}
	_, err = d.c.NetworkConnect(ctx, networkName, client.NetworkConnectOptions{Container: self})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("connect corral's container to network %s: %w", networkName, err)
	}
	return nil
}

// Logs is the container's multiplexed log stream (stdcopy framing).
func (d *dockerClient) Logs(ctx context.Context, id string, tail int, follow bool) (io.ReadCloser, error) {
	rc, err := d.c.ContainerLogs(ctx, id, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: follow, Tail: strconv.Itoa(tail),
	})
	if err != nil {
		return nil, fmt.Errorf("logs of %s: %w", id, err)
	}
	return rc, nil
}
