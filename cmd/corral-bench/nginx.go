package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// findNginx resolves --nginx: "off", a path, or "auto" (PATH, then
// /usr/sbin, where Debian puts it and where a user's PATH may not reach).
// It returns "" when nginx is to be skipped, with the reason.
func findNginx(flag string) (bin, why string) {
	switch flag {
	case "off":
		return "", "--nginx off"
	case "auto", "":
		if p, err := exec.LookPath("nginx"); err == nil {
			return p, ""
		}
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			return "/usr/sbin/nginx", ""
		}
		return "", "nginx is not installed; install it with: apt-get install -y nginx (Debian/Ubuntu)"
	}
	return flag, ""
}

// nginxVersion is "nginx/1.22.1", from `nginx -v`.
func nginxVersion(ctx context.Context, bin string) string {
	out, _ := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	s := strings.TrimSpace(string(out))
	if _, v, ok := strings.Cut(s, "version: "); ok {
		return v
	}
	return s
}

// nginxParams fill nginxConf.
type nginxParams struct {
	Dir      string
	Port     int
	Upstream string // host:port
	Workers  int
	Root     bool
	// Keepalive is the upstream pool: as large as the top level, at
	// least 256, so that every stream keeps its upstream connection.
	Keepalive int
}

// nginxConf is nginx configured for SSE as its documentation advises:
// no response or request buffering, HTTP/1.1 with a keep-alive pool to
// the upstream as large as the most streams the run opens at once, and
// connections and descriptors enough for them (a stream takes two: the
// client's and the upstream's). Everything it writes lives in the work
// directory. The keep-alive request limits are raised (from 1000) on
// both sides so that, like the gateway, nginx keeps its connections for
// the whole run.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`# written by corral-bench
daemon off;
master_process on;
worker_processes {{.Workers}};
{{if .Root}}user root;
{{end}}pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
worker_rlimit_nofile 16384;

events {
    worker_connections 8192;
}

http {
    access_log off;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;

    upstream ollama {
        server {{.Upstream}};
        keepalive {{.Keepalive}};
        keepalive_timeout 300s;
        keepalive_requests 1000000;
    }

    server {
        listen 127.0.0.1:{{.Port}} backlog=4096;
        location / {
            proxy_pass http://ollama;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 300s;
        }
    }
}
`))

// nginx is a running nginx: a master and its workers.
type nginx struct {
	*child
	base    string
	version string
	workers []int
}

// pids are the master's and the workers'.
func (n *nginx) pids() []int { return append([]int{n.pid()}, n.workers...) }

// startNginx runs nginx in the foreground from a prefix in dir, proxying
// to upstream (host:port), as the current user.
func startNginx(ctx context.Context, dir, bin, upstream string, workers, keepalive int, plan cpuPlan) (*nginx, error) {
	dir = filepath.Join(dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var conf strings.Builder
	p := nginxParams{Dir: dir, Port: port, Upstream: upstream, Workers: workers, Root: os.Geteuid() == 0, Keepalive: keepalive}
	if err := nginxConf.Execute(&conf, p); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	var c *child
	err = plan.onProxyCPUs(func() (err error) {
		c, err = startChild(ctx, dir, "nginx", os.Environ(), bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
		return err
	})
	if err != nil {
		return nil, err
	}
	n := &nginx{child: c, base: fmt.Sprintf("http://127.0.0.1:%d", port), version: nginxVersion(ctx, bin)}
	if err := c.waitHTTP(ctx, n.base+"/api/version", 10*time.Second); err != nil {
		c.stop()
		return nil, fmt.Errorf("%w\nnginx error.log:\n%s", err, tail(filepath.Join(dir, "error.log"), 1500))
	}
	n.workers = childPIDs(n.pid())
	if len(n.workers) == 0 {
		c.stop()
		return nil, errors.New("nginx: no worker processes found under the master")
	}
	return n, nil
}

// nginxKeepalive is nginx's upstream keep-alive pool for cfg's levels.
func nginxKeepalive(cfg config) int { return max(256, cfg.maxLevel()) }
