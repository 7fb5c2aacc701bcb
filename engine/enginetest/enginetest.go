// Package enginetest holds helpers for tests that run corral against the
// real Docker Engine: a private namespace per test, cleaned up by label,
// and a cuttable path to the Docker socket.
package enginetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Namespace returns a namespace unique to this test; every container,
// network and volume labelled with it is removed when the test ends.
func Namespace(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	ns := "ct-" + hex.EncodeToString(b)
	t.Cleanup(func() { RemoveNamespace(ns) })
	return ns
}

// RemoveNamespace removes what corral created under ns.
func RemoveNamespace(ns string) {
	label := "label=corral.namespace=" + ns
	if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", label).Output(); len(bytes.TrimSpace(ids)) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run()
	}
	exec.Command("docker", "network", "rm", ns).Run()
	// The models volume, and the chat UI's data volumes.
	exec.Command("docker", "volume", "rm", "-f", ns+"-models").Run()
	if vols, _ := exec.Command("docker", "volume", "ls", "-q", "--filter", label).Output(); len(bytes.TrimSpace(vols)) > 0 {
		exec.Command("docker", append([]string{"volume", "rm", "-f"}, strings.Fields(string(vols))...)...).Run()
	}
}

// Docker runs the docker CLI and fails the test on error.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// SocketProxy forwards a unix socket to the Docker socket and can cut
// every connection, so a test can make Docker vanish and come back
// without touching the shared engine.
type SocketProxy struct {
	Path   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// NewSocketProxy starts a proxy to the local Docker socket.
func NewSocketProxy(t testing.TB) *SocketProxy {
	t.Helper()
	target := "/var/run/docker.sock"
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		target = h
	}
	p := &SocketProxy{Path: filepath.Join(t.TempDir(), "docker.sock"), target: target, conns: map[net.Conn]bool{}}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Cut)
	return p
}

// Host is the DOCKER_HOST value that reaches the proxy.
func (p *SocketProxy) Host() string { return "unix://" + p.Path }

// Restore (re)opens the proxy.
func (p *SocketProxy) Restore() error {
	ln, err := net.Listen("unix", p.Path)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() { p.accept(ln) })
	return nil
}

// Cut closes the listener and every connection through it.
func (p *SocketProxy) Cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	os.Remove(p.Path)
}

func (p *SocketProxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("unix", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(c, up) })
		p.wg.Go(func() { p.pipe(up, c) })
	}
}

func (p *SocketProxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src) // ends when either side closes or the proxy is cut
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
