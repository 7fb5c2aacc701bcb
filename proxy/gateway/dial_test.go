package gateway

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hangingAddr is a loopback address whose connects hang: a listener with
// a backlog of 0 that never accepts, its queue filled, drops further SYNs
// as a host that vanished from the network answers none.
func hangingAddr(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("relies on Linux dropping SYNs to a full accept queue")
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	ln, err := net.FileListener(os.NewFile(uintptr(fd), "backlog0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr := ln.Addr().String()
	// Fill the queue: connects complete until it is full, then hang.
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("connects to a full accept queue did not hang here")
	return ""
}

func TestDialGivesUpWhenTheInstanceGoesDown(t *testing.T) {
	addr := hangingAddr(t)
	var up atomic.Bool
	up.Store(true)
	var asked atomic.Value
	d := newUpstreamDialer(func(a string) bool { asked.Store(a); return up.Load() })
	d.every = 20 * time.Millisecond
	time.AfterFunc(150*time.Millisecond, func() { up.Store(false) })
	start := time.Now()
	c, err := d.DialContext(context.Background(), "tcp", addr)
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("dial to a hanging address succeeded")
	}
	if !errors.Is(err, errInstanceDown) {
		t.Fatalf("dial: %v, want %v", err, errInstanceDown)
	}
	if took > 2*time.Second {
		t.Fatalf("gave up after %v: want soon after the instance went down (150 ms)", took)
	}
	if asked.Load() != addr {
		t.Fatalf("health asked for %v, want %s", asked.Load(), addr)
	}
}

func TestDialTimesOutAndHonoursTheCaller(t *testing.T) {
	addr := hangingAddr(t)
	d := newUpstreamDialer(func(string) bool { return true })
	d.timeout = 100 * time.Millisecond
	if _, err := d.DialContext(context.Background(), "tcp", addr); err == nil || errors.Is(err, errInstanceDown) {
		t.Fatalf("dial past its timeout: %v, want a timeout", err)
	}
	d.timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.DialContext(ctx, "tcp", addr)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) > 5*time.Second {
		t.Fatalf("dial past the caller's deadline: %v after %v, want a timeout", err, time.Since(start))
	}
}

func TestInServiceMatchesAddresses(t *testing.T) {
	a, b, c := upstreamAt(t, "a", "http://10.0.0.1:11434"), upstreamAt(t, "b", "http://10.0.0.2"), upstreamAt(t, "c", "https://10.0.0.3")
	b.Healthy = false
	ups := &staticUpstreams{}
	ups.s.Store(&Snapshot{Upstreams: []Upstream{a, b, c}})
	g := New(Config{Logger: quiet()}, ups, keyAuth{})
	defer g.Close()
	for addr, want := range map[string]bool{
		"10.0.0.1:11434": true, "10.0.0.2:80": false, "10.0.0.3:443": true, "10.0.0.9:11434": false,
	} {
		if got := g.inService(addr); got != want {
			t.Errorf("inService(%s) = %v, want %v", addr, got, want)
		}
	}
}
