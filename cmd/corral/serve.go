package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"corral/cmd/corral/wire"
	"corral/engine"
	"corral/engine/chatui"
	"corral/engine/keys"
	"corral/engine/models"
	"corral/engine/store"
	"corral/engine/usage"
	"corral/gpu"
	"corral/proxy/certs"
	"corral/proxy/frontdoor"
	"corral/proxy/gateway"
	"corral/ui"
)

// serveConfig is everything serve needs, parsed and validated up front.
type serveConfig struct {
	DataDir        string
	Namespace      string
	DockerHost     string
	Reach          string
	Addr           string
	AdminAddr      string
	AdminToken     string
	DrainGrace     time.Duration
	UsageRetention time.Duration
	LogLevel       string
	LogFormat      string
	HealthInterval time.Duration
	SimulateGPUs   int    // GPUs from NVML mocks instead of the host's
	CORSOrigins    string // browser origins allowed to call the gateway, comma-separated; stored
	TakeOver       bool

	door  doorConfig
	queue queueConfig
	chat  chatUIConfig

	settings engine.Settings
	explicit map[string]bool // settings given as flags or env, which override the store
}

var namespaceRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,39}$`)

// Validate returns every problem at once, one line each.
func (c serveConfig) Validate() error {
	var errs []error
	if !namespaceRE.MatchString(c.Namespace) {
		errs = append(errs, fmt.Errorf("--namespace %q: use 1-40 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit", c.Namespace))
	}
	if _, err := engine.ParseReach(c.Reach); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil && (c.Addr != "" || !c.door.hasDomain()) {
		errs = append(errs, fmt.Errorf("--addr %q: want host:port, such as :8080 or 127.0.0.1:8080 (empty turns it off, with a --domain)", c.Addr))
	}
	errs = append(errs, c.door.validate()...)
	errs = append(errs, c.queue.validate()...)
	errs = append(errs, c.chat.validate()...)
	if c.UsageRetention < 24*time.Hour {
		errs = append(errs, fmt.Errorf("--usage-retention %s: keep at least 24h", c.UsageRetention))
	}
	if c.DrainGrace < 0 {
		errs = append(errs, fmt.Errorf("--drain-grace %s: must not be negative", c.DrainGrace))
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("--admin-addr %q: want host:port, such as 127.0.0.1:8090 (empty turns it off)", c.AdminAddr))
		}
	}
	if _, err := gateway.ParseOrigins(strings.Split(c.CORSOrigins, ",")); err != nil {
		errs = append(errs, fmt.Errorf("--cors-origins: %w", err))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: use text or json", c.LogFormat))
	}
	if c.SimulateGPUs < 0 || c.SimulateGPUs > 64 {
		errs = append(errs, fmt.Errorf("--simulate-gpus %d: use 0 (off) to 64", c.SimulateGPUs))
	}
	if c.HealthInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--health-interval %s: use 100ms or more", c.HealthInterval))
	}
	if err := c.settings.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

func parseServe(args []string, stdout io.Writer) (serveConfig, error) {
	return parseServeAs("serve", args, stdout)
}

// parseServeAs parses serve's flags for the command name: corral doctor
// takes the same flags, to check what serve with them would need.
func parseServeAs(name string, args []string, stdout io.Writer) (serveConfig, error) {
	c := serveConfig{settings: engine.DefaultSettings()}
	fs := newFlagSet(name, stdout)
	fs.envAll = true // CORRAL_* variables are serve's configuration
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir(), "where corral keeps its state (corral.db, control socket)")
	fs.StringVar(&c.Namespace, "namespace", "corral", "prefix of every container, network and volume corral creates; separate installs on one Docker engine use different ones")
	fs.StringVar(&c.DockerHost, "docker-host", "", "Docker Engine address (default: DOCKER_HOST or the local socket)")
	fs.StringVar(&c.Reach, "reach", string(engine.ReachAuto), "how corral reaches Ollama: auto, ip (container IP), name (corral runs in a container), loopback (publish on 127.0.0.1 only)")
	fs.StringVar(&c.Addr, "addr", ":8080", "plain HTTP gateway listener: the OpenAI (/v1) and Ollama (/api) APIs, API key required; empty turns it off (with a --domain)")
	c.door.flags(fs)
	c.queue.flags(fs)
	c.chat.flags(fs)
	fs.DurationVar(&c.DrainGrace, "drain-grace", 30*time.Second, "how long a replaced instance's requests may run before it is stopped")
	fs.DurationVar(&c.UsageRetention, "usage-retention", usage.DefaultRetention, "how long daily usage totals are kept")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:8090", "admin pages and API listener (token or signed-in session); empty turns it off")
	fs.StringVar(&c.AdminToken, "admin-token", "", "admin API token (default: generated once and kept in DATA_DIR/admin-token)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.HealthInterval, "health-interval", 3*time.Second, "how often each instance's /api/version is probed")
	fs.BoolVar(&c.TakeOver, "take-over", false, "take the namespace over from the corral (another data dir) that owns it: its containers become this one's, and it stops managing them; give it for one start, not in a unit file (two corrals that both take over take turns)")
	fs.IntVar(&c.SimulateGPUs, "simulate-gpus", 0, "pretend this many A100 GPUs exist (NVML mocks), to try corral and its pages on a host without any; their instances run without a GPU")
	fs.StringVar(&c.CORSOrigins, "cors-origins", "", "web pages that may call the gateway from a browser (CORS): origins such as https://app.example.com, comma-separated, or * for any; stored, and changed live by the admin API (default: none, or the stored list)")
	s := &c.settings
	fs.StringVar(&s.GPUs, "gpus", s.GPUs, "GPUs to run Ollama on: all, none, or a list of indexes or UUIDs such as 0,2")
	fs.IntVar(&s.CPUInstances, "cpu-instances", s.CPUInstances, "Ollama instances to run when no GPU is used")
	fs.StringVar(&s.OllamaImage, "ollama-image", s.OllamaImage, "Ollama container image")
	fs.StringVar(&s.KeepAlive, "keep-alive", s.KeepAlive, "OLLAMA_KEEP_ALIVE for the instances, such as 5m or -1 (default: Ollama's)")
	fs.IntVar(&s.NumParallel, "num-parallel", s.NumParallel, "OLLAMA_NUM_PARALLEL for the instances (default: Ollama's)")
	if err := fs.parse(args); err != nil {
		return c, err
	}
	c.explicit = fs.set
	return c, c.Validate()
}

// settingFlags are the flags that are stored settings.
var settingFlags = []string{"gpus", "cpu-instances", "ollama-image", "keep-alive", "num-parallel"}

// mergeSettings lays the flags the user gave over what is stored, so a
// plain restart keeps earlier choices (or those made in the admin pages).
func mergeSettings(stored engine.Settings, c serveConfig) engine.Settings {
	out := stored
	for _, name := range settingFlags {
		if !c.explicit[name] {
			continue
		}
		switch name {
		case "gpus":
			out.GPUs = c.settings.GPUs
		case "cpu-instances":
			out.CPUInstances = c.settings.CPUInstances
		case "ollama-image":
			out.OllamaImage = c.settings.OllamaImage
		case "keep-alive":
			out.KeepAlive = c.settings.KeepAlive
		case "num-parallel":
			out.NumParallel = c.settings.NumParallel
		}
	}
	return out
}

func (a *app) serveCmd(ctx context.Context, args []string) error {
	c, err := parseServe(args, a.stdout)
	if err != nil {
		return helpOK(err)
	}
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(a.stderr, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(a.stderr, opts)
	}
	// Retries that fail the same way are logged once, then with a count.
	return a.serve(ctx, c, slog.New(newRepeatHandler(h, repeatEvery, time.Now)))
}

// gpuView pairs the discovery result with the live sampler for the API.
type gpuView struct {
	inv gpu.Inventory
	*gpu.Sampler
}

func (g gpuView) Inventory() gpu.Inventory { return g.inv }

func (a *app) serve(ctx context.Context, c serveConfig, log *slog.Logger) error {
	if err := store.CheckWritable(c.DataDir); err != nil {
		return fmt.Errorf("%w: choose another with --data-dir, or run as a user who can write there", err)
	}
	st, err := store.Open(c.DataDir)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("another corral is using DATA_DIR %s: stop it first, or give this one another --data-dir", c.DataDir)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	if err := applyStoredFrontDoor(&c, st); err != nil {
		return err
	}
	// The settings page asks for a start in place with its choices.
	restartReq := make(chan struct{}, 1)

	inv, sampler := a.discover(), gpu.NewSampler(5*time.Second)
	if c.SimulateGPUs > 0 {
		inv, sampler = gpu.Simulated(c.SimulateGPUs, 5*time.Second)
		log.Warn("simulated GPUs: NVML mocks stand in for the host's GPUs; instances run without one", "count", c.SimulateGPUs)
	}
	if len(inv.Devices) == 0 {
		log.Info("no GPUs: running Ollama on CPU", "reason", inv.Reason)
	} else {
		log.Info("GPUs found", "count", len(inv.Devices), "driver", inv.DriverVersion, "cuda", inv.CUDAVersion)
	}

	stored, err := engine.LoadSettings(st)
	if err != nil {
		return err
	}
	settings := mergeSettings(stored, c)
	if err := settings.Validate(); err != nil {
		return err
	}
	specs, err := engine.Plan(c.Namespace, settings, inv)
	if err != nil {
		return err
	}

	// Listen before anything is written, so a port in use changes nothing.
	sock, err := listenSocket(socketPath(c.DataDir))
	if err != nil {
		return err
	}
	// The gateway is built below; the front door calls it only once it
	// serves.
	var gw *gateway.Gateway
	var eng *engine.Engine
	doorCfg := c.door.frontdoorConfig(c.Addr)
	doorCfg.Gateway = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gw.ServeHTTP(w, r) })
	if c.chat.Mode != chatui.None {
		engNow := func() *engine.Engine { return eng }
		doorCfg.ChatAddr = c.chat.Addr
		doorCfg.ChatUI = frontdoor.NewAppProxy(chatUIState(engNow, chatui.Name(c.Namespace)), log)
		if c.chat.Mode == chatui.LobeChatDB {
			// Browsers upload files to the bucket's path on the domain.
			doorCfg.ChatFiles = frontdoor.NewAppProxy(chatUIState(engNow, chatui.Name(c.Namespace)+"-s3"), log)
			doorCfg.ChatFilesPrefix = "/" + chatui.Bucket + "/"
		}
	}
	doorCfg.Logger = log
	// The certificate manager only prepares here; it starts once
	// everything listens, so challenges find their listeners.
	var cm *certs.Manager
	if c.door.hasDomain() {
		cc := c.door.certConfig(doorCfg)
		cc.Storage = certs.NewStorage(st)
		cc.Logger = log
		if cm, err = certs.New(cc); err != nil {
			sock.Close()
			return err
		}
		defer cm.Stop()
		doorCfg.TLS = cm
	}
	door, err := frontdoor.Listen(doorCfg)
	if err != nil {
		sock.Close()
		return err
	}
	var admin net.Listener
	if c.AdminAddr != "" {
		admin, err = net.Listen("tcp", c.AdminAddr)
		if err != nil {
			sock.Close()
			door.Close()
			return fmt.Errorf("--admin-addr %s: %w: pick another with --admin-addr, or stop what uses it", c.AdminAddr, errors.Unwrap(err))
		}
	}
	closeAll := func() {
		sock.Close()
		door.Close()
		if admin != nil {
			admin.Close()
		}
	}
	token := c.AdminToken
	var tokenFile string // where the token is kept; empty when given as a flag
	firstStart := false  // the token was just made: nobody has signed in yet
	if admin != nil && token == "" {
		tokenFile = filepath.Join(c.DataDir, "admin-token")
		if token, firstStart, err = loadOrCreateToken(tokenFile); err != nil {
			closeAll()
			return err
		}
	}
	// The namespace is this store's, or another corral's: refused here,
	// before anything is written or changed on Docker.
	claimed, err := engine.Claim(ctx, engine.Config{Namespace: c.Namespace, DockerHost: c.DockerHost, Store: st, TakeOver: c.TakeOver, Logger: log})
	if err != nil {
		closeAll()
		return err
	}
	if err := engine.SaveSettings(st, settings); err != nil {
		closeAll()
		return err
	}
	if err := engine.RecordNamespace(st, c.Namespace); err != nil {
		closeAll()
		return err
	}
	if err := st.ReplaceInstances(specs); err != nil {
		closeAll()
		return err
	}

	// The engine waits for the gateway's requests on a draining instance;
	// the gateway reads the engine's routes. gw is set before eng runs.
	eng, err = engine.New(engine.Config{
		Namespace:      c.Namespace,
		DockerHost:     c.DockerHost,
		Reach:          engine.Reach(c.Reach),
		HealthInterval: c.HealthInterval,
		SimulatedGPUs:  c.SimulateGPUs > 0,
		DrainWait:      func(ctx context.Context, name string) { gw.WaitIdle(ctx, name) },
		DrainGrace:     c.DrainGrace,
		Store:          st,
		TakeOver:       c.TakeOver && !claimed, // Docker did not answer at the claim above
		Logger:         log,
	}, specs)
	if err != nil {
		closeAll()
		return err
	}
	defer eng.Close()
	apiKeys, err := keys.New(st, keys.WithLogger(log))
	if err != nil {
		closeAll()
		return err
	}

	mdl, err := models.New(models.Config{Store: st, GPUFree: freeByUUID(sampler), SpoolDir: c.DataDir, Logger: log}, eng)
	if err != nil {
		closeAll()
		return err
	}
	meter, err := usage.New(st, apiKeys, usage.WithLogger(log), usage.WithRetention(c.UsageRetention))
	if err != nil {
		closeAll()
		return err
	}
	cf, err := wire.NewContentFilter(st)
	if err != nil {
		closeAll()
		return err
	}
	cors, err := wire.NewCORS(st)
	if err == nil && c.explicit["cors-origins"] {
		err = cors.SetOrigins(ctx, strings.Split(c.CORSOrigins, ","))
	}
	if err != nil {
		closeAll()
		return err
	}
	// Scrapes read the queue once gw is built (below, before anything serves).
	rates := ui.NewTokenRates(nil)
	prom := wire.NewMetrics(eng, inv, sampler, wire.QueueMetrics(func() *gateway.Gateway { return gw }))
	gw = gateway.New(gateway.Config{Logger: log, MaxBodyBytes: doorCfg.Limits.MaxBody, Meter: wire.Meter{M: meter}, Filter: cf, Observer: wire.Observer{M: prom, Tokens: rates},
		Priorities: wire.Priorities{K: apiKeys}, Scheduling: c.queue.schedulerConfig(), CORS: cors, Version: version},
		&upstreams{eng: eng, models: mdl, sampler: sampler}, apiKeys)
	defer gw.Close()
	gin.SetMode(gin.ReleaseMode)
	fd := &doorStatus{door: door, certs: cm}
	deps := ui.Deps{Engine: eng, GPUs: gpuView{inv, sampler}, Keys: apiKeys, Models: mdl, Usage: meter, Filter: cf, CORS: cors, FrontDoor: fd}
	deps.Scheduler = schedStatus{gw}
	deps.Backup = st
	deps.Settings = &instanceSettings{st: st, eng: eng, inv: inv, namespace: c.Namespace, cur: settings}
	deps.Certs = certReport{cm}
	deps.DataDisk = dataDisk(c.DataDir)
	deps.Door = &frontDoorSettings{st: st, running: c, restart: func() {
		select {
		case restartReq <- struct{}{}:
		default:
		}
	}}
	deps.Tokens = rates
	cu := &chatUI{cfg: c.chat, namespace: c.Namespace, publicURL: publicURL(doorCfg), listener: door.Addr("chat"), eng: eng, st: st, keys: apiKeys, gateway: gw, log: log}
	if c.chat.Mode != chatui.None {
		deps.ChatUI = cu
	}
	// The admin listener's handler is made first: the control socket's
	// API rotates its token (corral admin-token --rotate).
	var adminHandler *ui.Admin
	var adminBase string // the admin pages' URL
	if admin != nil {
		if adminHandler, err = ui.NewAdmin(ui.AdminConfig{Token: token, TokenFile: tokenFile, Metrics: prom.Handler(), Logger: log}, deps); err != nil {
			closeAll()
			return err
		}
		deps.AdminToken = adminHandler
		adminBase = adminURL(admin.Addr())
		if cm != nil {
			_, port, _ := net.SplitHostPort(admin.Addr().String())
			adminBase = "https://" + net.JoinHostPort(cm.Status().Names[0], port) + "/"
		}
		deps.SignInLink = func() (string, error) { return adminHandler.SignInLink(adminBase) }
	}
	api := ui.NewAPI(deps)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	serveErr := make(chan error, 4)
	// The control socket and the admin listener; the front door serves
	// its own listeners.
	servers := []*http.Server{{Handler: api, ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{sock}
	if admin != nil {
		// The admin listener: the admin pages and the API (token or
		// signed-in session), and Prometheus /metrics behind the same.
		// With a domain it is HTTPS with the same certificate, on its own
		// port: never on the chat UI's origin.
		srv := &http.Server{Handler: adminHandler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
		admin = door.Guard(admin, cm == nil)
		if cm != nil {
			srv.TLSConfig = cm.TLSConfig()
			admin = tls.NewListener(admin, srv.TLSConfig)
		}
		servers = append(servers, srv)
		listeners = append(listeners, admin)
		attrs := []any{"addr", admin.Addr().String(), "url", adminBase}
		if tokenFile != "" {
			attrs = append(attrs, "token_file", tokenFile)
		}
		log.Info("admin API listening", attrs...)
		if firstStart {
			// The first start prints a way in that needs no copying of
			// the token; corral admin-link makes more.
			if link, err := adminHandler.SignInLink(adminBase); err == nil {
				log.Info(signInLinkMsg, "link", link)
			}
		}
	}
	for i, srv := range servers {
		wg.Go(func() {
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		})
	}
	wg.Go(func() {
		if err := door.Serve(ctx, 10*time.Second); err != nil {
			serveErr <- err
		}
	})
	if cm != nil {
		if err := cm.Start(ctx); err != nil {
			cancel()
			wg.Wait()
			return err
		}
	}
	wg.Go(func() {
		if err := sampler.Run(ctx); err != nil {
			log.Warn("gpu sampler stopped", "err", err)
		}
	})
	wg.Go(func() {
		if err := apiKeys.Run(ctx); err != nil {
			log.Warn("API key last-use times not saved", "err", err)
		}
	})
	wg.Go(func() {
		if err := meter.Run(ctx); err != nil {
			log.Warn("usage not saved", "err", err)
		}
	})
	wg.Go(func() {
		if err := mdl.Run(ctx); err != nil {
			log.Warn("model manager stopped", "err", err)
		}
	})
	wg.Go(func() {
		if err := eng.Run(ctx); err != nil {
			serveErr <- err
		}
	})
	wg.Go(func() {
		if err := cu.run(ctx); err != nil && ctx.Err() == nil {
			log.Error("chat UI not started", "err", err)
		}
	})
	log.Info("corral serving", "version", version, "data_dir", c.DataDir, "namespace", c.Namespace, "instances", len(specs), "socket", sock.Addr().String())
	for _, r := range door.Routes() {
		log.Debug("route", "route", r.String())
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down; Ollama containers keep running")
	case runErr = <-serveErr:
	case <-restartReq:
		log.Info("starting again in place with the saved settings; the containers keep running")
		runErr = errRestart
	}
	cancel()
	shutCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	for _, srv := range servers {
		srv.Shutdown(shutCtx)
	}
	wg.Wait()
	// Requests the front door drained after Run's last write used keys
	// and settled usage too.
	if err := apiKeys.Flush(); err != nil {
		log.Warn("API key last-use times not saved", "err", err)
	}
	if err := meter.Flush(); err != nil {
		log.Warn("usage of the last requests not saved", "err", err)
	}
	return runErr
}

// listenSocket opens the control socket, mode 0600. We hold the store's
// lock, so a socket file left behind is stale and can go.
func listenSocket(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket: %w", err)
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return l, nil
}

// adminURL is where a person opens the admin pages: a wildcard listen
// address is reached on this host as localhost.
func adminURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// loadOrCreateToken keeps the generated admin token in a 0600 file, so it
// survives restarts and an admin can read it as the owner.
func loadOrCreateToken(path string) (token string, created bool, err error) {
	raw, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(raw))) > 0 {
		return strings.TrimSpace(string(raw)), false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	b := make([]byte, 24)
	rand.Read(b)
	token = hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write admin token: %w", err)
	}
	return token, true, nil
}

// signInLinkMsg is the first start's log line with a sign-in link.
const signInLinkMsg = "sign in to the admin pages with this link (it works once, for 15 minutes; corral admin-link makes another)"

// errRestart asks main to start corral again in place (the same binary,
// arguments and environment), once everything is closed.
var errRestart = errors.New("restart in place")
