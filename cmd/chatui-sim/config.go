package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// role is the container the simulator stands in for.
type role string

const (
	roleOpenWebUI role = "open-webui"
	roleLobeChat  role = "lobechat"
	rolePostgres  role = "postgres"
	roleMinIO     role = "minio"
)

// defaultPort is the port the real image listens on.
var defaultPort = map[role]string{
	roleOpenWebUI: "8080",
	roleLobeChat:  "3210",
	rolePostgres:  "5432",
	roleMinIO:     "9000",
}

// web reports whether the role is a chat UI, served over HTTP with the
// chat, websocket and data endpoints.
func (r role) web() bool { return r == roleOpenWebUI || r == roleLobeChat }

// roleHints picks a role from the environment a real image would be given,
// so the simulator stands in for an image that corral starts without any
// simulator-specific setting. The first role with a variable set wins.
var roleHints = []struct {
	role role
	vars []string
}{
	{rolePostgres, []string{"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "PGDATA"}},
	// The S3 store: MinIO, or RustFS, which LobeHub's compose uses now.
	{roleMinIO, []string{"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "RUSTFS_ACCESS_KEY", "RUSTFS_SECRET_KEY"}},
	{roleLobeChat, []string{"OPENAI_PROXY_URL", "ACCESS_CODE", "KEY_VAULTS_SECRET", "NEXT_AUTH_SECRET"}},
	{roleOpenWebUI, []string{"OPENAI_API_BASE_URL", "OPENAI_API_BASE_URLS", "WEBUI_SECRET_KEY"}},
}

// config is what the simulator reads at start.
type config struct {
	Role     role
	RoleFrom string // how Role was chosen, for the start-up log line
	Addr     string // listen address, ":" + port

	// Env is the whole environment, served by GET /env.
	Env map[string]string

	// DataDir is where the web roles keep their files; "" means none.
	DataDir string

	// UpstreamBase and UpstreamKey address the OpenAI-compatible API that
	// /chat and /models call; UpstreamVar names the variable UpstreamBase
	// came from, for error messages.
	UpstreamBase    string
	UpstreamKey     string
	UpstreamVar     string
	UpstreamTimeout time.Duration
}

// loadConfig reads the role from the first argument when it names one,
// else from SIM_ROLE, else from the hints above, else open-webui. Other
// arguments, such as a real image's command ("server /data" for MinIO),
// are ignored.
func loadConfig(environ, args []string) (config, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if k != "" {
			env[k] = v
		}
	}
	cfg := config{Env: env, UpstreamTimeout: 2 * time.Minute}

	switch {
	case len(args) > 0 && defaultPort[role(args[0])] != "":
		cfg.Role, cfg.RoleFrom = role(args[0]), "argument"
	case env["SIM_ROLE"] != "":
		cfg.Role, cfg.RoleFrom = role(env["SIM_ROLE"]), "SIM_ROLE"
		if defaultPort[cfg.Role] == "" {
			return config{}, fmt.Errorf("SIM_ROLE %q: want open-webui, lobechat, postgres or minio", cfg.Role)
		}
	default:
		cfg.Role, cfg.RoleFrom = roleOpenWebUI, "default"
	hints:
		for _, h := range roleHints {
			for _, v := range h.vars {
				if _, ok := env[v]; ok {
					cfg.Role, cfg.RoleFrom = h.role, v
					break hints
				}
			}
		}
	}

	port := defaultPort[cfg.Role]
	if p, ok := env["PORT"]; ok && p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return config{}, fmt.Errorf("PORT %q: want a port number", p)
		}
		port = p
	}
	cfg.Addr = net.JoinHostPort("", port)

	if !cfg.Role.web() {
		return cfg, nil
	}
	if d, ok := env["SIM_DATA_DIR"]; ok {
		cfg.DataDir = d
	} else if cfg.Role == roleOpenWebUI {
		cfg.DataDir = "/app/backend/data"
	}
	cfg.UpstreamKey = env["OPENAI_API_KEY"]
	switch cfg.Role {
	case roleOpenWebUI:
		// Open WebUI also takes ";"-separated lists; the first entry wins.
		cfg.UpstreamVar = "OPENAI_API_BASE_URL"
		cfg.UpstreamBase = env["OPENAI_API_BASE_URL"]
		if cfg.UpstreamBase == "" && env["OPENAI_API_BASE_URLS"] != "" {
			cfg.UpstreamVar = "OPENAI_API_BASE_URLS"
			cfg.UpstreamBase, _, _ = strings.Cut(env["OPENAI_API_BASE_URLS"], ";")
		}
		if cfg.UpstreamKey == "" && env["OPENAI_API_KEYS"] != "" {
			cfg.UpstreamKey, _, _ = strings.Cut(env["OPENAI_API_KEYS"], ";")
		}
	case roleLobeChat:
		cfg.UpstreamVar = "OPENAI_PROXY_URL"
		cfg.UpstreamBase = env["OPENAI_PROXY_URL"]
	}
	cfg.UpstreamBase = strings.TrimRight(strings.TrimSpace(cfg.UpstreamBase), "/")
	cfg.UpstreamKey = strings.TrimSpace(cfg.UpstreamKey)
	return cfg, cfg.validate()
}

// validate reports every problem at once.
func (c config) validate() error {
	var errs []error
	if c.UpstreamBase != "" && !strings.HasPrefix(c.UpstreamBase, "http://") && !strings.HasPrefix(c.UpstreamBase, "https://") {
		errs = append(errs, fmt.Errorf("%s %q: want an http:// or https:// URL", c.UpstreamVar, c.UpstreamBase))
	}
	if c.UpstreamTimeout <= 0 {
		errs = append(errs, errors.New("upstream timeout must be positive"))
	}
	return errors.Join(errs...)
}
