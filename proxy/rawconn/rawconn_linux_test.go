package rawconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// pair returns a raw connection and the plain TCP connection at its other
// end, over loopback.
func pair(t *testing.T) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	rc, ok := Wrap(d).(*Conn)
	if !ok {
		t.Fatalf("Wrap(%T) is not a raw connection", d)
	}
	// A broken transfer fails the test rather than hanging it.
	deadline := time.Now().Add(30 * time.Second)
	rc.SetDeadline(deadline)
	peer.SetDeadline(deadline)
	t.Cleanup(func() { rc.Close(); peer.Close() })
	return rc, peer.(*net.TCPConn)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// More than the socket buffers hold, so writes meet EAGAIN and wait for
// the reader, and reads come in pieces.
func TestLargeTransfersBothWays(t *testing.T) {
	rc, peer := pair(t)
	want := pattern(8 << 20)
	for _, dir := range []struct {
		name string
		w    io.Writer
		r    io.Reader
	}{{"raw writes", rc, peer}, {"raw reads", peer, rc}} {
		t.Run(dir.name, func(t *testing.T) {
			errc := make(chan error, 1)
			go func() {
				_, err := dir.w.Write(want)
				errc <- err
			}()
			got := make([]byte, len(want))
			if _, err := io.ReadFull(dir.r, got); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("bytes differ")
			}
		})
	}
}

func TestWritevKeepsOrderAcrossCallsAndPartialWrites(t *testing.T) {
	rc, peer := pair(t)
	var bufs [][]byte
	var want []byte
	// More buffers than one writev takes, empty ones among them, and
	// enough bytes that the kernel takes them in several calls.
	for i := 0; i < 5*maxIovecs+3; i++ {
		b := pattern((i % 7) * 40000)
		if len(b) > 0 {
			b[0] = byte(i)
		}
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	errc := make(chan error, 1)
	var n int64
	go func() {
		var err error
		n, err = Writev(rc, bufs...)
		errc <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("wrote %d of %d bytes; equal %v", n, len(want), bytes.Equal(got, want))
	}
}

func TestErrorsLookLikePackageNets(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		rc, _ := pair(t)
		rc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := rc.Read(make([]byte, 10))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past the deadline: %v, want a timeout", err)
		}
	})
	t.Run("a deadline in the past aborts a waiting read", func(t *testing.T) {
		rc, _ := pair(t)
		errc := make(chan error, 1)
		go func() {
			_, err := rc.Read(make([]byte, 10))
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond)
		rc.SetDeadline(time.Unix(1, 0))
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("read still waiting")
		}
	})
	t.Run("EOF", func(t *testing.T) {
		rc, peer := pair(t)
		peer.Write([]byte("last"))
		peer.Close()
		b, err := io.ReadAll(rc)
		if err != nil || string(b) != "last" {
			t.Fatalf("ReadAll = %q, %v", b, err)
		}
		if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("read after EOF = %d, %v", n, err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		rc, peer := pair(t)
		peer.SetLinger(0)
		peer.Close()
		_, err := rc.Read(make([]byte, 1))
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "read" || !strings.Contains(err.Error(), "reset") {
			t.Fatalf("read from a reset connection: %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		rc, _ := pair(t)
		rc.Close()
		if _, err := rc.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v", err)
		}
		if _, err := rc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after Close: %v", err)
		}
	})
	t.Run("broken pipe", func(t *testing.T) {
		rc, peer := pair(t)
		peer.SetLinger(0)
		peer.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			_, err = rc.Write([]byte("hello"))
			time.Sleep(time.Millisecond)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "write" {
			t.Fatalf("writes to a reset connection: %v", err)
		}
	})
}

func TestWrapLeavesOtherConnections(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a pipe was wrapped")
	}
	go b.Write([]byte("xy"))
	go io.Copy(io.Discard, b)
	if n, err := Writev(a, []byte("a"), nil, []byte("b")); n != 2 || err != nil {
		t.Fatalf("Writev on a pipe = %d, %v", n, err)
	}
}

// net/http serves keep-alive requests and a flushed stream over the
// listener's connections, and the handlers see raw ones.
func TestHTTPServerOverListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	connType := make(chan string, 16)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "data: %s %d\n\n", body, i)
				w.(http.Flusher).Flush()
			}
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			connType <- fmt.Sprintf("%T", c)
			return ctx
		},
	}
	go srv.Serve(Listener{ln})
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	for i := 0; i < 3; i++ {
		resp, err := client.Post("http://"+ln.Addr().String()+"/", "text/plain", strings.NewReader(fmt.Sprint("req", i)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("data: req%d 0\n\ndata: req%d 1\n\ndata: req%d 2\n\n", i, i, i)
		if err != nil || string(b) != want {
			t.Fatalf("request %d: %q, %v", i, b, err)
		}
	}
	if got := <-connType; got != "*rawconn.Conn" {
		t.Fatalf("the server got a %s", got)
	}
	select {
	case got := <-connType:
		t.Fatalf("3 requests took a second connection (%s): keep-alive failed", got)
	default:
	}
}
