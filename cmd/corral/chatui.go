package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"corral/engine"
	"corral/engine/chatui"
	"corral/engine/keys"
	"corral/engine/store"
	"corral/proxy/frontdoor"
	"corral/proxy/gateway"
)

// chatUIConfig is the chat UI's part of serve's flags.
type chatUIConfig struct {
	Mode             string
	Image            string
	DBImage, S3Image string
	Env              envFlag
	Addr             string
}

func (c *chatUIConfig) flags(fs *flagSet) {
	fs.StringVar(&c.Mode, "chat-ui", chatui.OpenWebUI, "the chat UI corral runs and serves: open-webui, lobechat, lobechat-db (LobeChat with its database and object store) or none")
	fs.StringVar(&c.Image, "chat-ui-image", "", "the chat UI's image (default: the chosen UI's official one)")
	fs.StringVar(&c.DBImage, "chat-ui-db-image", chatui.DBImage, "lobechat-db's PostgreSQL image (with pg_search)")
	fs.StringVar(&c.S3Image, "chat-ui-s3-image", chatui.S3Image, "lobechat-db's S3 object store image")
	fs.Var(&c.Env, "chat-ui-env", "KEY=VALUE for the chat UI's environment, such as its single sign-on settings; repeat the flag for more")
	fs.StringVar(&c.Addr, "chat-addr", ":3000", "plain HTTP listener for the chat UI when there is no --domain; empty turns it off")
}

// envFlag collects KEY=VALUE pairs, one per flag.
type envFlag map[string]string

func (e *envFlag) String() string { return "" }

func (e *envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || strings.ContainsAny(k, " \t\n") {
		return fmt.Errorf("%q: give KEY=VALUE, such as AUTH_SSO_PROVIDERS=generic-oidc", s)
	}
	if *e == nil {
		*e = envFlag{}
	}
	(*e)[k] = v
	return nil
}

// validate returns one error per problem.
func (c chatUIConfig) validate() []error {
	var errs []error
	if _, err := chatui.ParseMode(c.Mode); err != nil {
		errs = append(errs, err)
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("--chat-addr %q: want host:port, such as :3000 (empty turns it off)", c.Addr))
		}
	}
	return errs
}

// chatUIState reads the chat UI container's state for the front door.
func chatUIState(eng func() *engine.Engine, name string) func() frontdoor.AppState {
	return func() frontdoor.AppState {
		e := eng()
		if e == nil {
			return frontdoor.AppState{Phase: string(engine.PhasePending)}
		}
		r, ok := e.Routes().Apps[name]
		if !ok {
			return frontdoor.AppState{Phase: string(engine.PhasePending)}
		}
		phase, reason, _ := strings.Cut(r.Status, ": ")
		return frontdoor.AppState{URL: r.URL, Healthy: r.Healthy, Phase: phase, Reason: reason}
	}
}

// internalPortSetting keeps the internal listener's port, so the chat
// UI's address for the gateway (part of its container's spec) does not
// change with every start.
const internalPortSetting = "internal_gateway_port"

// chatUI runs what the chat UI needs of corral: the internal listener it
// reaches the gateway on (only the private network reaches it, and there
// a chat UI's user fields are believed), its key, and its containers.
type chatUI struct {
	cfg       chatUIConfig
	namespace string
	publicURL string
	listener  net.Addr // --chat-addr's, without a domain; nil: none
	eng       *engine.Engine
	st        *store.Store
	keys      *keys.Manager
	gateway   http.Handler
	log       *slog.Logger
}

// run sets the desired chat UI containers and serves the internal
// listener until ctx ends. With --chat-ui none it removes the container
// (its volume stays).
func (c *chatUI) run(ctx context.Context) error {
	if c.cfg.Mode == chatui.None {
		c.eng.SetApps(nil)
		return nil
	}
	listen, dial, err := c.internalHost(ctx)
	if err != nil {
		return err
	}
	l, err := c.listen(listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: gateway.TrustUserHeaders(c.gateway), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-done
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	c.log.Info("internal gateway listening", "addr", l.Addr().String(), "for", "the chat UI")

	secrets, err := chatui.LoadSecrets(c.st)
	if err != nil {
		return err
	}
	if name, err := c.keys.Authorize(ctx, secrets.Key, ""); err != nil || name != keys.InternalName {
		// First start, or the key was rotated or revoked by hand: a new
		// one, which the recreated container gets.
		if secrets.Key, err = c.keys.RotateInternal(ctx); err != nil {
			return fmt.Errorf("chat UI key: %w", err)
		}
		if err := chatui.SaveSecrets(c.st, secrets); err != nil {
			return err
		}
	}
	cfg := chatui.Config{
		Mode: c.cfg.Mode, Image: c.cfg.Image, DBImage: c.cfg.DBImage, S3Image: c.cfg.S3Image, Env: c.cfg.Env, Namespace: c.namespace,
		Gateway: "http://" + net.JoinHostPort(dial, port), Key: secrets.Key, PublicURL: c.publicURL, Secrets: secrets,
	}
	// LobeChat lists the models it is given; Open WebUI asks the gateway.
	lobe := c.cfg.Mode == chatui.LobeChat || c.cfg.Mode == chatui.LobeChatDB
	if lobe {
		// The first list comes with the instances' first poll: a container
		// made without it would be replaced a moment later, at every start.
		cfg.Models = c.waitModels(ctx, 30*time.Second)
	}
	if err := c.apply(cfg); err != nil {
		return err
	}
	bucketMade := c.cfg.Mode != chatui.LobeChatDB
	var pending []string // a changed model list, applied once it holds for a tick
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			return fmt.Errorf("internal gateway listener: %w", err)
		case <-t.C:
		}
		if !bucketMade {
			bucketMade = c.ensureBucket(ctx, secrets)
		}
		if !lobe {
			continue
		}
		if m := c.models(); !slices.Equal(m, cfg.Models) {
			if slices.Equal(m, pending) {
				c.log.Info("the chat UI's model list changed; recreating it", "models", len(m))
				cfg.Models = m
				if err := c.apply(cfg); err != nil {
					return err
				}
			}
			pending = m
		}
	}
}

// apply sets the chat UI's containers from cfg.
func (c *chatUI) apply(cfg chatui.Config) error {
	specs, err := chatui.Specs(cfg)
	if err != nil {
		return err
	}
	c.eng.SetApps(specs)
	return nil
}

// models lists every model some healthy instance has, sorted.
func (c *chatUI) models() []string {
	set := map[string]bool{}
	for _, r := range c.eng.Routes().Routes {
		if r.Healthy {
			for _, m := range r.Models {
				set[m.Name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// waitModels waits up to d for the instances' first poll and returns the
// models then.
func (c *chatUI) waitModels(ctx context.Context, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, r := range c.eng.Routes().Routes {
			if r.Healthy && !r.PolledAt.IsZero() {
				return c.models()
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return c.models()
}

// ensureBucket makes LobeChat's bucket once its object store is up, and
// reports whether it is made. It is tried every tick until it is: each
// failure is logged, and the daemon's log writes the same one once per
// repeatEvery (repeatHandler).
func (c *chatUI) ensureBucket(ctx context.Context, s chatui.Secrets) bool {
	r, ok := c.eng.Routes().Apps[chatui.Name(c.namespace)+"-s3"]
	if !ok || !r.Healthy {
		return false
	}
	if err := chatui.EnsureBucket(ctx, r.URL, s.S3Access, s.S3Secret); err != nil {
		c.log.Warn("the chat UI's bucket is not made yet; trying again", "err", err)
		return false
	}
	c.log.Info("object store ready", "bucket", chatui.Bucket)
	return true
}

// internalHost waits until Docker has said where containers reach corral.
func (c *chatUI) internalHost(ctx context.Context) (listen, dial string, err error) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	warned := false
	for {
		if listen, dial, ok := c.eng.InternalHost(); ok {
			return listen, dial, nil
		}
		if !warned && c.eng.Status().Docker == "ok" {
			// Docker answers, yet containers cannot reach corral: a host
			// (Docker Desktop) where corral reaches them on loopback.
			c.log.Warn("the chat UI waits: its container cannot reach corral on this host (--reach loopback); run corral in a container on the namespace's network (--reach name), or use --chat-ui none")
			warned = true
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-t.C:
		}
	}
}

// listen opens the internal listener on host, on the port it had before
// when that is free.
func (c *chatUI) listen(host string) (net.Listener, error) {
	var port int
	if err := c.st.Setting(internalPortSetting, &port); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if port > 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
			return l, nil
		}
		c.log.Warn("the internal gateway's port is taken; the chat UI gets another and is recreated", "port", port)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("internal gateway listener on %s: %w", host, err)
	}
	_, p, _ := net.SplitHostPort(l.Addr().String())
	port, _ = strconv.Atoi(p)
	if err := c.st.PutSettings(map[string]any{internalPortSetting: port}); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// publicURL is where users open the chat UI, for links it makes: the
// first domain over HTTPS; unknown without one.
func publicURL(door frontdoor.Config) string {
	if len(door.Domains) == 0 {
		return ""
	}
	u := "https://" + door.Domains[0]
	if _, port, _ := net.SplitHostPort(door.HTTPSAddr); port != "" && port != "443" {
		u = "https://" + net.JoinHostPort(door.Domains[0], port)
	}
	return u
}
