package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
)

// baselineRelay as --baseline measures this binary's relay instead of
// another build's gateway.
const baselineRelay = "relay"

// serveRelay is `corral-bench relay`: bytes copied both ways between each
// client connection and a connection of its own to the upstream, with no
// HTTP read into anything. It is the floor of a Go proxy on the machine:
// the gateway's added time above the relay's is what its own work costs
// (parsing, the key, the model, the balancer, the stream's framing),
// and the relay's above nginx's what Go's runtime and one goroutine per
// direction cost. It prints the address it listens on, then relays until
// ctx ends.
func serveRelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("corral-bench relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen address; the bound one is printed on stdout")
	upstream := fs.String("upstream", "", "the upstream's base URL, e.g. http://127.0.0.1:11434: its host and port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" || u.Scheme != "http" {
		return fmt.Errorf("relay: --upstream %q: want an http:// URL", *upstream)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	// Returning, when ctx ends or an Accept fails, closes the listener and
	// every relayed connection, and waits for their goroutines.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	context.AfterFunc(ctx, func() { ln.Close() })
	fmt.Fprintln(stdout, ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("relay: %w", err)
		}
		wg.Go(func() { relayConn(ctx, c, u.Host) })
	}
}

// relayConn copies between c and a new connection to upstream until
// either side ends, then closes both.
func relayConn(ctx context.Context, c net.Conn, upstream string) {
	defer c.Close()
	var d net.Dialer
	uc, err := d.DialContext(ctx, "tcp", upstream)
	if err != nil {
		return
	}
	defer uc.Close()
	closeBoth := func() {
		c.Close()
		uc.Close()
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pump(c, uc)
		closeBoth()
	}()
	pump(uc, c)
	closeBoth()
	<-done
}

// pump copies src to dst read by read, as a proxy that looks at what it
// passes must: io.Copy would splice between the two sockets, a kernel
// path no HTTP proxy takes.
func pump(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
