package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// upstreamDialer connects to instances, giving up on one the moment the
// engine stops calling it healthy. A connect to a container killed an
// instant ago gets no answer until the kernel's neighbour lookup gives up,
// about 3 s later: a request that picked the instance just before the
// engine saw it die would wait that long before its retry elsewhere.
type upstreamDialer struct {
	net.Dialer
	timeout time.Duration
	every   time.Duration // how often a pending connect checks health
	// healthy reports whether an instance at addr (host:port) is still in
	// service.
	healthy func(addr string) bool
}

// errInstanceDown is a connect abandoned because the instance went down.
var errInstanceDown = errors.New("the instance went down while connecting")

func newUpstreamDialer(healthy func(string) bool) *upstreamDialer {
	return &upstreamDialer{
		Dialer:  net.Dialer{KeepAlive: 30 * time.Second},
		timeout: 5 * time.Second,
		every:   100 * time.Millisecond,
		healthy: healthy,
	}
}

func (d *upstreamDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var down atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	// Local connects take microseconds: the watcher only matters for the
	// rare one that hangs, and ends with the dial.
	go func() {
		t := time.NewTicker(d.every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if !d.healthy(addr) {
					down.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	c, err := d.Dialer.DialContext(ctx, network, addr)
	if err != nil {
		if down.Load() {
			return nil, fmt.Errorf("dial %s: %w", addr, errInstanceDown)
		}
		return nil, err
	}
	return &upstreamConn{Conn: c}, nil
}

// upstreamConn counts the reads that brought bytes, so that a request on
// a reused connection can tell whether its answer came after it was
// asked. An instance that writes an answer nobody asked for on an idle
// connection, in the same segment as its last answer, has it buffered
// by the Transport, which checks for that only racily
// (golang/go#31259): the next request on the connection could get it.
type upstreamConn struct {
	net.Conn
	reads atomic.Uint64
	mark  atomic.Uint64 // reads when the request now on the connection got it
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.Add(1)
	}
	return n, err
}

// asked marks a request taking the connection, before it is written.
func (c *upstreamConn) asked() { c.mark.Store(c.reads.Load()) }

// answeredUnasked reports whether the answer to the request marked by
// asked was parsed without a byte read after it: it was there before.
func (c *upstreamConn) answeredUnasked() bool { return c.reads.Load() == c.mark.Load() }

// hostPort is the address an upstream's connections go to.
func hostPort(u *Upstream) string {
	if u.URL.Port() != "" {
		return u.URL.Host
	}
	port := "80"
	if u.URL.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.URL.Hostname(), port)
}
