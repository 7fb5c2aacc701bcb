package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestPostgresAcceptsAndCloses(t *testing.T) {
	addr := startServe(t, "SIM_ROLE=postgres", "POSTGRES_PASSWORD=pw")

	t.Run("connect and hang up", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	t.Run("startup message is answered by a close", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ssl := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877103) // SSLRequest
		if _, err := c.Write(ssl); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("read %d bytes, %v; want EOF", n, err)
		}
	})
	t.Run("GET /env on the same port", func(t *testing.T) {
		var env map[string]string
		getJSON(t, "http://"+addr+"/env", &env)
		if env["POSTGRES_PASSWORD"] != "pw" {
			t.Errorf("env %v", env)
		}
	})
}

func TestSniffListenerClosesSilentConnections(t *testing.T) {
	l := sniffOnLoopback(t, 50*time.Millisecond)
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read: %v, want EOF", err)
	}
}

func TestSniffListenerCloseWakesSniffers(t *testing.T) {
	l := sniffOnLoopback(t, time.Hour)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(20 * time.Millisecond) // let the sniffer start waiting
	start := time.Now()
	l.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

func sniffOnLoopback(t *testing.T, timeout time.Duration) *sniffListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newSniffListener(ln, testLogger(t), timeout)
}

// startServe runs serve for the configuration loaded from env on a
// loopback port until the test ends, and returns the address.
func startServe(t *testing.T, env ...string) string {
	t.Helper()
	cfg, err := loadConfig(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, ln, testLogger(t)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not return after the context ended")
		}
	})
	return ln.Addr().String()
}
