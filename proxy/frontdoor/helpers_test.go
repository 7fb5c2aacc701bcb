package frontdoor_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"corral/proxy/frontdoor"
	"corral/proxy/gateway"
)

// The security tests' fixtures; every name starts with sec so that they
// stay apart from the other test files of the package.

// secModel is the one model the test instances serve.
const secModel = "m:latest"

// secAuth admits the key "good" only.
type secAuth struct{}

func (secAuth) Authorize(_ context.Context, key, _ string) (string, error) {
	if key != "good" {
		return "", errors.New("unknown API key")
	}
	return "tester", nil
}

// secUpstreams is a fixed snapshot of one instance.
type secUpstreams struct{ s *gateway.Snapshot }

func (u secUpstreams) Snapshot() *gateway.Snapshot { return u.s }

func secQuiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// secInstance starts an instance that answers with h; its URL.
func secInstance(t *testing.T, h http.HandlerFunc) *url.URL {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

// secDoor is a front door on 127.0.0.1 over a gateway in front of one
// instance, "i0".
type secDoor struct {
	door *frontdoor.Server
	gw   *gateway.Gateway
	addr string // host:port of the plain HTTP listener
	url  string // http://addr
}

type secDoorOpts struct {
	limits  frontdoor.Limits
	trusted []netip.Prefix
	maxBody int64 // the gateway's; 0: its default
}

// startSecDoor serves a front door until the test ends.
func startSecDoor(t *testing.T, instance *url.URL, o secDoorOpts) *secDoor {
	t.Helper()
	up := gateway.Upstream{Name: "i0", URL: instance, Healthy: true, Status: "healthy", Weight: 1, Parallel: 1,
		Models: map[string]bool{secModel: true}, Loaded: map[string]bool{}}
	gw := gateway.New(gateway.Config{Logger: secQuiet(), MaxBodyBytes: o.maxBody},
		secUpstreams{&gateway.Snapshot{Version: 1, Upstreams: []gateway.Upstream{up}}}, secAuth{})
	door, err := frontdoor.Listen(frontdoor.Config{Addr: "127.0.0.1:0", Gateway: gw, Limits: o.limits, Trusted: o.trusted, Logger: secQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { door.Serve(ctx, time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done; gw.Close() })
	addr := door.Addr("http").String()
	return &secDoor{door: door, gw: gw, addr: addr, url: "http://" + addr}
}

// secDial opens a raw connection to addr from the local address from
// (nil: any).
func secDial(t *testing.T, addr string, from net.IP) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != nil {
		d.LocalAddr = &net.TCPAddr{IP: from}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// secSmallRcvBuf makes a dialer's socket take little before the sender
// must wait: a client that stops reading is felt at once.
func secSmallRcvBuf(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	return errors.Join(err, serr)
}

// secReadResponse reads one response from a raw connection within d;
// the body is read whole.
func secReadResponse(c net.Conn, br *bufio.Reader, d time.Duration) (*http.Response, string, error) {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// secClosed reports whether the peer closed c (EOF or a reset) within d,
// discarding whatever else it sends; a timeout is not a close.
func secClosed(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("still open after " + d.String())
	}
	return err
}

// secMem samples what the process holds while a test runs: the Go heap
// and stacks in use (no collection is forced, so garbage counts too and
// the figure is an upper bound), and the resident set.
type secMem struct {
	base, baseRSS uint64
	peak, peakRSS atomic.Uint64
	stop          chan struct{}
	wg            sync.WaitGroup
}

func secGoMem() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// secRSS is VmRSS from /proc/self/status, or 0 where there is none.
func secRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// secWatchMem takes a baseline after a collection, then samples every
// 20 ms until stopped.
func secWatchMem() *secMem {
	runtime.GC()
	m := &secMem{base: secGoMem(), baseRSS: secRSS(), stop: make(chan struct{})}
	m.sample()
	m.wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sample()
			}
		}
	})
	return m
}

func (m *secMem) sample() {
	if v := secGoMem(); v > m.peak.Load() {
		m.peak.Store(v)
	}
	if v := secRSS(); v > m.peakRSS.Load() {
		m.peakRSS.Store(v)
	}
}

// added stops sampling and returns the peaks above the baseline.
func (m *secMem) added() (goMem, rss uint64) {
	m.sample()
	close(m.stop)
	m.wg.Wait()
	sub := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	return sub(m.peak.Load(), m.base), sub(m.peakRSS.Load(), m.baseRSS)
}

// secWait polls cond every 20 ms until it holds or d passes.
func secWait(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// secMiB is n bytes in MiB, for logs.
func secMiB(n uint64) float64 { return float64(n) / (1 << 20) }

// secTLS stands in for the certificate manager where a test needs a
// domain's routes but serves them over plain HTTP.
type secTLS struct{}

func (secTLS) TLSConfig() *tls.Config                                      { return &tls.Config{} }
func (secTLS) HandleHTTPChallenge(http.ResponseWriter, *http.Request) bool { return false }

// secFreePort is a port nothing listened on a moment ago.
func secFreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// secListenerHandler is what the front door serves on listener with
// cfg's domains; cfg's other addresses (HTTPS's unless given), TLS and
// logger are filled in.
func secListenerHandler(t *testing.T, cfg frontdoor.Config, listener string) http.Handler {
	t.Helper()
	if cfg.HTTPSAddr == "" {
		cfg.HTTPSAddr = "127.0.0.1:" + secFreePort(t)
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.TLS = secTLS{}
	cfg.Logger = secQuiet()
	h, err := frontdoor.ListenerHandlerForTest(cfg, listener)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// secNamed answers with its name: a stand-in for the gateway or the
// chat UI where only the routing matters.
func secNamed(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })
}

// secDeadURL is an address that refuses connections until the test
// ends: a socket bound there that does not listen holds the port, so
// no other test's listener can take it meanwhile.
func secDeadURL(t *testing.T) *url.URL {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	return u
}
