package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// child is a process the benchmark started. Its stdout and stderr go to
// files in the work directory; stop ends it with SIGTERM (SIGKILL after
// a grace period) and waits, as does the end of the context it started
// under. If the benchmark dies, the kernel sends it SIGTERM (see
// setDeathSignal).
type child struct {
	name    string
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	done    chan struct{} // closed once the process was waited for
	err     error         // Wait's error, after done
	outPath string
	logPath string
}

func startChild(ctx context.Context, dir, name string, env []string, argv ...string) (*child, error) {
	outPath := filepath.Join(dir, name+".out")
	logPath := filepath.Join(dir, name+".log")
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, cancel: cancel, done: make(chan struct{}), outPath: outPath, logPath: logPath}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the process and waits for it.
func (c *child) stop() {
	c.cancel()
	<-c.done
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// failure describes a child that exited early, with the tail of its log.
func (c *child) failure() error {
	return fmt.Errorf("%s exited (%v); its log ends:\n%s", c.name, c.err, tail(c.logPath, 1500))
}

// firstLine waits for the first line the child prints on stdout.
func (c *child) firstLine(ctx context.Context, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(c.outPath)
		if line, _, ok := bytes.Cut(b, []byte("\n")); ok {
			return strings.TrimSpace(string(line)), nil
		}
		if c.exited() {
			return "", c.failure()
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s printed no address within %s", c.name, timeout)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// waitHTTP polls url until it answers 200.
func (c *child) waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if c.exited() {
			return c.failure()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s did not answer within %s: %v", c.name, url, timeout, err)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tail is the last n bytes of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimRight(string(b), "\n")
}

// freePort finds a port on 127.0.0.1 nothing listens on, for children
// that take a port rather than report the one they bound.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// environ is os.Environ without the variables whose names start with one
// of drop, plus set.
func environ(drop []string, set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, p := range drop {
			if strings.HasPrefix(name, p) {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}
