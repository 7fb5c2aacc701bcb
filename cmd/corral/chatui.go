package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
	specs, err := chatui.Specs(chatui.Config{
		Mode: c.cfg.Mode, Image: c.cfg.Image, DBImage: c.cfg.DBImage, S3Image: c.cfg.S3Image, Env: c.cfg.Env, Namespace: c.namespace,
		Gateway: "http://" + net.JoinHostPort(dial, port), Key: secrets.Key, PublicURL: c.publicURL, Secrets: secrets,
	})
	if err != nil {
		return err
	}
	c.eng.SetApps(specs)
	if c.cfg.Mode == chatui.LobeChatDB {
		c.ensureBucket(ctx, secrets)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		return fmt.Errorf("internal gateway listener: %w", err)
	}
}

// ensureBucket makes LobeChat's bucket once its object store is up,
// trying again until it can or ctx ends.
func (c *chatUI) ensureBucket(ctx context.Context, s chatui.Secrets) {
	name := chatui.Name(c.namespace) + "-s3"
	t := time.NewTicker(time.Second)
	defer t.Stop()
	failures := 0
	for {
		if r, ok := c.eng.Routes().Apps[name]; ok && r.Healthy {
			err := chatui.EnsureBucket(ctx, r.URL, s.S3Access, s.S3Secret)
			if err == nil {
				c.log.Info("object store ready", "bucket", chatui.Bucket)
				return
			}
			if failures++; failures == 1 || failures%60 == 0 {
				c.log.Warn("the chat UI's bucket is not made yet; trying again", "err", err, "tries", failures)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
