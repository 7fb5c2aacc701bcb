package engine

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestProbeReasonsNameNoAddress: a failed probe's reason, which status,
// the pages and the gateway's 503s show, says what failed without the
// address the instance is reached at.
func TestProbeReasonsNameNoAddress(t *testing.T) {
	const addr = "172.18.0.3:11434"
	wrap := func(err error) error {
		return &url.Error{Op: "Get", URL: "http://" + addr + "/api/version", Err: err}
	}
	dial := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("172.18.0.3"), Port: 11434}, Err: err}
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"refused", wrap(dial(os.NewSyscallError("connect", syscall.ECONNREFUSED))), "connect: connection refused"},
		{"no such host", wrap(dial(&net.DNSError{Err: "no such host", Name: "corral-ollama-0", Server: "127.0.0.11:53", IsNotFound: true})), "lookup corral-ollama-0: no such host"},
		{"timeout", wrap(dial(timeoutErr{})), "no answer in time"},
		{"cut", wrap(errors.New("EOF")), "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := netReason(tc.err).Error(); got != tc.want {
				t.Errorf("reason = %q, want %q", got, tc.want)
			}
		})
	}

	// A real probe of a port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	e := newEngine(Config{Namespace: "t", Logger: quiet()}, newFake(), nil)
	r := e.probe(context.Background(), "http://"+dead)
	if r.err == nil || strings.Contains(r.err.Error(), dead) || strings.Contains(r.err.Error(), "127.0.0.1") || !strings.Contains(r.err.Error(), "connection refused") {
		t.Fatalf("probe of a dead port: %v", r.err)
	}
	r = e.probeApp(context.Background(), "http://"+dead, "tcp")
	if r.err == nil || strings.Contains(r.err.Error(), "127.0.0.1") {
		t.Fatalf("tcp probe of a dead port: %v", r.err)
	}
}
