package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"corral/engine"
	"corral/engine/chatui"
	"corral/gpu"
	"corral/proxy/frontdoor"
)

// level is how a doctor check came out.
type level int

const (
	levelOK level = iota
	levelSkip
	levelWarn
	levelFail
)

func (l level) String() string {
	return [...]string{"OK", "SKIP", "WARN", "FAIL"}[l]
}

// finding is one line of corral doctor: what was checked, how it came
// out, and what to do about it.
type finding struct {
	level level
	check string // short name: docker, gpus, port, ...
	msg   string
	fix   string // empty when there is nothing to do
}

func (f finding) String() string {
	s := fmt.Sprintf("%-4s  %-7s %s", f.level, f.check, f.msg)
	if f.fix != "" {
		s += "; fix: " + f.fix
	}
	return s
}

// Thresholds of the disk check: models are gigabytes each.
const (
	diskWarnBytes = 20 << 30
	diskFailBytes = 1 << 30
	clockSkewWarn = 5 * time.Second
)

// doctorCmd checks what `corral serve` with the same flags needs, one line
// per check, and fails when any check fails.
func (a *app) doctorCmd(ctx context.Context, args []string) error {
	c, err := parseServeAs("doctor", args, a.stdout)
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return helpOK(err)
	}
	d := &doctor{cfg: c, discover: a.discover, now: time.Now, lookup: net.DefaultResolver.LookupIPAddr}
	findings := d.run(ctx, err)
	failed := 0
	for _, f := range findings {
		fmt.Fprintln(a.stdout, f)
		if f.level == levelFail {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("doctor: %d of %d checks failed", failed, len(findings))
	}
	return nil
}

// doctor runs the checks for one configuration.
type doctor struct {
	cfg      serveConfig
	discover func() gpu.Inventory
	now      func() time.Time
	lookup   func(ctx context.Context, host string) ([]net.IPAddr, error)

	docker  *engine.DockerInfo // nil when Docker did not answer
	probe   *engine.Probe
	running *statusReport // the corral running on the data dir, if it answers
}

func (d *doctor) run(ctx context.Context, configErr error) []finding {
	var out []finding
	out = append(out, configFinding(configErr))
	out = append(out, d.checkDocker(ctx))
	if d.probe != nil {
		defer d.probe.Close()
	}
	out = append(out, d.checkDaemon(ctx))
	out = append(out, gpuFindings(d.cfg, d.discover(), d.docker, nvidiaHookInstalled())...)
	out = append(out, d.checkPorts(ctx)...)
	out = append(out, d.checkDomains(ctx)...)
	out = append(out, d.checkClock())
	out = append(out, d.checkDisk()...)
	out = append(out, d.checkImages(ctx)...)
	return out
}

func configFinding(err error) finding {
	if err == nil {
		return finding{level: levelOK, check: "config", msg: "flags and CORRAL_* settings are valid"}
	}
	return finding{level: levelFail, check: "config", msg: strings.ReplaceAll(err.Error(), "\n", "; "),
		fix: "correct them: corral serve would refuse to start"}
}

// checkDocker pings Docker and reads its versions.
func (d *doctor) checkDocker(ctx context.Context) finding {
	p, err := engine.NewProbe(d.cfg.DockerHost)
	if err != nil {
		return finding{level: levelFail, check: "docker", msg: err.Error(), fix: "check --docker-host / DOCKER_HOST"}
	}
	d.probe = p
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := p.Info(ctx)
	if err != nil {
		return finding{level: levelFail, check: "docker", msg: fmt.Sprintf("Docker is not reachable at %s: %v", info.Host, unwrapOp(err)), fix: dockerFix(info.Host, err)}
	}
	d.docker = &info
	msg := fmt.Sprintf("Docker %s reachable at %s, API %s", info.ServerVersion, info.Host, info.APIVersion)
	if info.ClientVersion != "" && info.ClientVersion != info.APIVersion {
		msg += " (corral speaks " + info.ClientVersion + ")"
	}
	return finding{level: levelOK, check: "docker", msg: msg}
}

// dockerFix says what to do when Docker does not answer.
func dockerFix(host string, err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return "run corral as root, or as a member of the docker group"
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED):
		if strings.HasPrefix(host, "unix://") {
			return "start Docker (sudo systemctl start docker), install Docker Engine if it is missing, or point --docker-host / DOCKER_HOST at the right socket"
		}
	}
	return "start Docker, or point --docker-host / DOCKER_HOST at a running engine"
}

// checkDaemon asks the corral running on the data dir, if any, how it is.
func (d *doctor) checkDaemon(ctx context.Context) finding {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var st statusReport
	if err := newDaemon(d.cfg.DataDir).getJSON(ctx, "/api/v1/status", &st); err != nil {
		return finding{level: levelOK, check: "corral", msg: fmt.Sprintf("not running on %s (nothing answers on %s)", d.cfg.DataDir, socketPath(d.cfg.DataDir))}
	}
	d.running = &st
	healthy := 0
	var bad []string
	for _, in := range st.Instances {
		if in.Phase == engine.PhaseHealthy {
			healthy++
			continue
		}
		bad = append(bad, fmt.Sprintf("%s %s %s", in.Name, in.Phase, in.Reason))
	}
	for _, app := range st.Apps {
		if app.Phase != engine.PhaseHealthy {
			bad = append(bad, fmt.Sprintf("%s %s %s", app.Name, app.Phase, app.Reason))
		}
	}
	msg := fmt.Sprintf("running on %s: namespace %s, %d of %d instances healthy", d.cfg.DataDir, st.Namespace, healthy, len(st.Instances))
	if st.Docker != "ok" {
		return finding{level: levelWarn, check: "corral", msg: msg + "; " + st.Docker, fix: "see the docker line"}
	}
	if len(bad) > 0 {
		return finding{level: levelWarn, check: "corral", msg: msg + "; " + strings.Join(bad, "; "), fix: "corral status shows more; the log (journalctl -u corral) says why"}
	}
	return finding{level: levelOK, check: "corral", msg: msg}
}

// gpuFindings checks the GPUs serve would use and, when there are any,
// that Docker can hand them to containers.
func gpuFindings(c serveConfig, inv gpu.Inventory, docker *engine.DockerInfo, hook bool) []finding {
	settings := c.settings
	if _, err := engine.Plan(c.Namespace, settings, inv); err != nil {
		return []finding{{level: levelFail, check: "gpus", msg: err.Error(), fix: "choose GPUs that exist with --gpus (corral gpus lists them), or --gpus all"}}
	}
	if !gpu.NVML {
		if _, err := os.Stat("/proc/driver/nvidia/version"); err == nil {
			return []finding{{level: levelWarn, check: "gpus", msg: "the NVIDIA driver is loaded, but this corral was built without NVML (CGO_ENABLED=0): Ollama would run on CPU",
				fix: "use a build with cgo (scripts/build makes one)"}}
		}
		return []finding{{level: levelOK, check: "gpus", msg: "none: built without NVML (CGO_ENABLED=0) and no NVIDIA driver here; Ollama runs on CPU"}}
	}
	if len(inv.Devices) == 0 {
		return []finding{{level: levelOK, check: "gpus", msg: fmt.Sprintf("none (%s): Ollama runs on CPU, %d instance(s)", inv.Reason, settings.CPUInstances)}}
	}
	var names []string
	for _, dev := range inv.Devices {
		names = append(names, fmt.Sprintf("%d %s", dev.Index, dev.Name))
	}
	out := []finding{{level: levelOK, check: "gpus", msg: fmt.Sprintf("%d: %s (driver %s, CUDA %s)", len(inv.Devices), strings.Join(names, ", "), inv.DriverVersion, inv.CUDAVersion)}}
	if settings.GPUs == "none" {
		return out
	}
	switch {
	case docker == nil:
		out = append(out, finding{level: levelSkip, check: "nvidia", msg: "Docker's runtimes not checked: Docker is not reachable"})
	case slices.Contains(docker.Runtimes, "nvidia"):
		out = append(out, finding{level: levelOK, check: "nvidia", msg: "Docker has the nvidia runtime (runtimes: " + strings.Join(docker.Runtimes, ", ") + ")"})
	case hook:
		out = append(out, finding{level: levelOK, check: "nvidia", msg: "the NVIDIA Container Toolkit's hook is installed: Docker passes GPUs through it (no nvidia runtime registered)"})
	default:
		out = append(out, finding{level: levelFail, check: "nvidia",
			msg: "GPUs found, but Docker has no nvidia runtime (runtimes: " + strings.Join(docker.Runtimes, ", ") + "): instances would fail with \"could not select device driver\"",
			fix: "install the NVIDIA Container Toolkit, then sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker"})
	}
	return out
}

// nvidiaHookInstalled reports the NVIDIA Container Toolkit's hook, through
// which Docker passes GPUs even without the nvidia runtime registered.
func nvidiaHookInstalled() bool {
	_, err := exec.LookPath("nvidia-container-runtime-hook")
	return err == nil
}

// listenAddr is one address serve would listen on.
type listenAddr struct{ flag, addr string }

// listenAddrs are the addresses serve would listen on with this config,
// from the front door's own routing table.
func listenAddrs(c serveConfig) []listenAddr {
	door := c.door.frontdoorConfig(c.Addr)
	chatAddr := ""
	if c.chat.Mode != chatui.None {
		chatAddr = c.chat.Addr
	}
	used := map[string]bool{}
	for _, r := range frontdoor.Table(door.Addr, chatAddr, door.Domains, door.APIDomains, c.chat.Mode != chatui.None, "") {
		used[r.Listener] = true
	}
	var out []listenAddr
	if c.Addr != "" {
		out = append(out, listenAddr{"--addr", c.Addr})
	}
	if used["chat"] && chatAddr != "" {
		out = append(out, listenAddr{"--chat-addr", chatAddr})
	}
	if c.door.hasDomain() {
		out = append(out, listenAddr{"--https-addr", c.door.HTTPSAddr}, listenAddr{"--http-addr", c.door.HTTPAddr})
	}
	if c.AdminAddr != "" {
		out = append(out, listenAddr{"--admin-addr", c.AdminAddr})
	}
	return out
}

// checkPorts tries each listen address: free, held by the corral running
// on the data dir, or taken by something else.
func (d *doctor) checkPorts(ctx context.Context) []finding {
	var out []finding
	for _, la := range listenAddrs(d.cfg) {
		l, err := net.Listen("tcp", la.addr)
		if err == nil {
			l.Close()
			out = append(out, finding{level: levelOK, check: "port", msg: fmt.Sprintf("%s %s is free", la.flag, la.addr)})
			continue
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			if d.ours(ctx, la) {
				out = append(out, finding{level: levelOK, check: "port", msg: fmt.Sprintf("%s %s is in use by the corral running on %s", la.flag, la.addr, d.cfg.DataDir)})
				continue
			}
			_, port, _ := net.SplitHostPort(la.addr)
			out = append(out, finding{level: levelFail, check: "port", msg: fmt.Sprintf("%s %s is in use by another program", la.flag, la.addr),
				fix: fmt.Sprintf("stop it (sudo ss -ltnp 'sport = :%s' names it), or pick another %s", port, la.flag)})
		case errors.Is(err, syscall.EACCES):
			out = append(out, finding{level: levelWarn, check: "port", msg: fmt.Sprintf("%s %s needs privileges this user lacks", la.flag, la.addr),
				fix: "run corral as root, or through its systemd unit (which grants CAP_NET_BIND_SERVICE)"})
		default:
			out = append(out, finding{level: levelFail, check: "port", msg: fmt.Sprintf("%s %s: %v", la.flag, la.addr, err),
				fix: "pick an address of this host with " + la.flag})
		}
	}
	return out
}

// unwrapOp shortens a network error to the operation's own: "dial unix
// /run/docker.sock: connect: permission denied" rather than every wrapper's
// words around it.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	return err
}

// ours reports whether the corral running on the data dir holds la: its
// status lists the front door's listeners and the chat UI's; the admin
// listener answers its token.
func (d *doctor) ours(ctx context.Context, la listenAddr) bool {
	if d.running == nil {
		return false
	}
	_, port, err := net.SplitHostPort(la.addr)
	if err != nil {
		return false
	}
	var held []string
	if fd := d.running.FrontDoor; fd != nil {
		for _, a := range fd.Listeners {
			held = append(held, a)
		}
	}
	if cu := d.running.ChatUI; cu != nil {
		if u, err := url.Parse(cu.URL); err == nil && u.Port() != "" {
			held = append(held, u.Host)
		}
	}
	for _, a := range held {
		if _, p, err := net.SplitHostPort(a); err == nil && p == port {
			return true
		}
	}
	if la.flag == "--admin-addr" {
		return d.adminAnswers(ctx, la.addr)
	}
	return false
}

// adminAnswers asks the admin listener for the status with the admin
// token: only our corral accepts it.
func (d *doctor) adminAnswers(ctx context.Context, addr string) bool {
	token := d.cfg.AdminToken
	if token == "" {
		raw, err := os.ReadFile(filepath.Join(d.cfg.DataDir, "admin-token"))
		if err != nil {
			return false
		}
		token = strings.TrimSpace(string(raw))
	}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// Over HTTPS the certificate is for the domain, not 127.0.0.1; the
	// token is what tells our corral apart.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	for _, scheme := range []string{"http", "https"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, port)+"/api/v1/status", nil)
		if err != nil {
			return false
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	return false
}

// checkDomains looks each name up and compares its addresses with this
// host's.
func (d *doctor) checkDomains(ctx context.Context) []finding {
	door := d.cfg.door.frontdoorConfig(d.cfg.Addr)
	names := slices.Concat(door.Domains, door.APIDomains)
	if len(names) == 0 {
		return []finding{{level: levelSkip, check: "domain", msg: "no --domain: HTTPS is off, the gateway serves plain HTTP on --addr"}}
	}
	local := localAddrs()
	var out []finding
	for _, name := range names {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err := d.lookup(lctx, name)
		cancel()
		if err != nil || len(addrs) == 0 {
			out = append(out, finding{level: levelFail, check: "domain", msg: fmt.Sprintf("%s does not resolve: %v", name, err),
				fix: fmt.Sprintf("create a DNS A (or AAAA) record for %s with this server's public address; the certificate needs it", name)})
			continue
		}
		var ips []string
		here := false
		for _, a := range addrs {
			ips = append(ips, a.IP.String())
			if local[a.IP.String()] {
				here = true
			}
		}
		if here {
			out = append(out, finding{level: levelOK, check: "domain", msg: fmt.Sprintf("%s resolves to %s, an address of this host", name, strings.Join(ips, ", "))})
			continue
		}
		out = append(out, finding{level: levelWarn, check: "domain", msg: fmt.Sprintf("%s resolves to %s, not an address of this host", name, strings.Join(ips, ", ")),
			fix: "fine behind NAT or a load balancer that forwards ports 80 and 443 here; otherwise point the DNS record at this server"})
	}
	return out
}

// localAddrs are this host's interface addresses.
func localAddrs() map[string]bool {
	out := map[string]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out[n.IP.String()] = true
		}
	}
	return out
}

// checkClock compares this host's clock with Docker's and asks the kernel
// whether NTP keeps it synchronized: certificates and key expiry depend
// on it.
func (d *doctor) checkClock() finding {
	now := d.now()
	if b := currentBuild(); b.BuildDate != "" {
		if built, err := time.Parse(time.RFC3339, strings.Fields(b.BuildDate)[0]); err == nil && now.Before(built.Add(-24*time.Hour)) {
			return finding{level: levelFail, check: "clock", msg: fmt.Sprintf("the clock says %s, before this corral was built (%s)", now.UTC().Format(time.RFC3339), b.BuildDate),
				fix: "set the time: sudo timedatectl set-ntp true (or install chrony)"}
		}
	}
	lv := levelOK
	var parts []string
	if d.docker != nil && !d.docker.SystemTime.IsZero() {
		if skew := d.docker.SystemTime.Sub(now); skew < -clockSkewWarn || skew > clockSkewWarn {
			lv = levelWarn
			parts = append(parts, fmt.Sprintf("Docker's clock differs from this host's by %s", skew.Round(time.Second)))
		} else {
			parts = append(parts, "matches Docker's")
		}
	}
	if synced, known := ntpSynced(); known && !synced {
		lv = levelWarn
		parts = append(parts, "the kernel says it is not synchronized (no NTP)")
	} else if known {
		parts = append(parts, "synchronized (NTP)")
	}
	f := finding{level: lv, check: "clock", msg: now.UTC().Format(time.RFC3339)}
	if len(parts) > 0 {
		f.msg += ": " + strings.Join(parts, "; ")
	}
	if lv != levelOK {
		f.fix = "enable time sync (sudo timedatectl set-ntp true, or install chrony): certificates and key expiry need a right clock"
	}
	return f
}

// ntpSynced asks the kernel (adjtimex, read only) whether the clock is
// synchronized.
func ntpSynced() (synced, known bool) {
	var t syscall.Timex
	state, err := syscall.Adjtimex(&t)
	if err != nil {
		return false, false
	}
	const timeError = 5 // TIME_ERROR: not synchronized
	return state != timeError, true
}

// checkDisk reports the free space where models (Docker's root: images and
// volumes) and corral's store live.
func (d *doctor) checkDisk() []finding {
	type place struct{ path, what string }
	var places []place
	if d.docker != nil && d.docker.RootDir != "" && strings.HasPrefix(d.docker.Host, "unix://") {
		places = append(places, place{d.docker.RootDir, "Docker's root: images and the models volume"})
	}
	places = append(places, place{d.cfg.DataDir, "corral's data dir"})
	var out []finding
	seen := map[uint64]bool{} // by file system: one line each
	for _, p := range places {
		path := existingParent(p.path)
		var fs syscall.Statfs_t
		if err := syscall.Statfs(path, &fs); err != nil {
			out = append(out, finding{level: levelSkip, check: "disk", msg: fmt.Sprintf("%s (%s): %v", p.path, p.what, err)})
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(path, &st) == nil {
			if seen[uint64(st.Dev)] {
				continue
			}
			seen[uint64(st.Dev)] = true
		}
		free := fs.Bavail * uint64(fs.Bsize)
		msg := fmt.Sprintf("%s free in %s (%s)", engine.IECBytes(int64(free)), p.path, p.what)
		switch {
		case free < diskFailBytes:
			out = append(out, finding{level: levelFail, check: "disk", msg: msg, fix: "free space there: corral's store and every model need room"})
		case free < diskWarnBytes:
			out = append(out, finding{level: levelWarn, check: "disk", msg: msg + ", under " + engine.IECBytes(diskWarnBytes), fix: "models take 1-50 GiB each: free space, or move Docker's data-root to a bigger disk"})
		default:
			out = append(out, finding{level: levelOK, check: "disk", msg: msg})
		}
	}
	return out
}

// existingParent is path, or its nearest parent that exists.
func existingParent(path string) string {
	for {
		if _, err := os.Stat(path); err == nil {
			return path
		}
		parent := filepath.Dir(path)
		if parent == path {
			return path
		}
		path = parent
	}
}

// images are the images serve would run: those of the running corral when
// one answers and no image flag says otherwise, else the flags'.
func (d *doctor) images() []string {
	var out []string
	add := func(img string) {
		if img != "" && !slices.Contains(out, img) {
			out = append(out, img)
		}
	}
	c := d.cfg
	if d.running != nil && !c.explicit["ollama-image"] {
		for _, in := range d.running.Instances {
			add(in.Image)
		}
	}
	if len(out) == 0 {
		add(c.settings.OllamaImage)
	}
	if d.running != nil && !c.explicit["chat-ui"] && !c.explicit["chat-ui-image"] {
		for _, app := range d.running.Apps {
			add(app.Image)
		}
		return out
	}
	if c.chat.Mode == chatui.None {
		return out
	}
	img := c.chat.Image
	if img == "" {
		img = chatui.Images[c.chat.Mode]
	}
	add(img)
	if c.chat.Mode == chatui.LobeChatDB {
		add(c.chat.DBImage)
		add(c.chat.S3Image)
	}
	return out
}

// checkImages looks for each image in Docker.
func (d *doctor) checkImages(ctx context.Context) []finding {
	imgs := d.images()
	if d.docker == nil {
		return []finding{{level: levelSkip, check: "image", msg: "images not checked (" + strings.Join(imgs, ", ") + "): Docker is not reachable"}}
	}
	var out []finding
	for _, img := range imgs {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := d.probe.HasImage(ictx, img)
		cancel()
		switch {
		case err != nil:
			out = append(out, finding{level: levelWarn, check: "image", msg: fmt.Sprintf("%s: %v", img, err)})
		case ok:
			out = append(out, finding{level: levelOK, check: "image", msg: img + " is present"})
		default:
			out = append(out, finding{level: levelWarn, check: "image", msg: img + " is not present: corral pulls it at start, which needs its registry", fix: imageFix(img)})
		}
	}
	return out
}

// imageFix says how to get an image: pull it, or build the ones this
// repository builds.
func imageFix(img string) string {
	switch {
	case strings.HasPrefix(img, "corral-ollama:"):
		return "build it offline from Ollama's source: scripts/ollama-image --tag " + img
	case strings.HasPrefix(img, "corral-ollama-sim:"):
		return "the tests build the Ollama simulator's image: go test -run TestServeHealsAndAdopts ./cmd/corral"
	}
	return "docker pull " + img
}
