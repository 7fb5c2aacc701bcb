package main

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// sniffTimeout is how long a postgres-role connection may stay silent
// before it is closed. A health check that connects and hangs up is
// closed at once.
const sniffTimeout = 2 * time.Second

// httpMethods are the first four bytes of the HTTP requests the postgres
// role serves on its port (GET /env). A PostgreSQL client starts with a
// big-endian message length, never ASCII letters.
var httpMethods = map[string]bool{"GET ": true, "HEAD": true, "POST": true, "PUT ": true, "OPTI": true}

// sniffListener accepts TCP connections for the postgres role: it closes
// every connection that does not start with an HTTP request, and hands
// the others to an http.Server through Accept.
type sniffListener struct {
	ln      net.Listener
	log     *slog.Logger
	timeout time.Duration // for the first bytes
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

var _ net.Listener = (*sniffListener)(nil)

// newSniffListener starts accepting on ln; Close stops it. A connection
// silent for timeout is closed.
func newSniffListener(ln net.Listener, logger *slog.Logger, timeout time.Duration) *sniffListener {
	l := &sniffListener{ln: ln, log: logger, timeout: timeout, conns: make(chan net.Conn), done: make(chan struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *sniffListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				continue
			}
			return // closed
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.sniff(c)
		}()
	}
}

// sniff reads the first bytes of c: an HTTP request goes to Accept, all
// else is logged and closed.
func (l *sniffListener) sniff(c net.Conn) {
	// Close wakes a pending read by moving its deadline to now.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-l.done:
			_ = c.SetReadDeadline(time.Now())
		case <-stop:
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(l.timeout))
	br := bufio.NewReader(c)
	head, err := br.Peek(4)
	close(stop)
	<-stopped
	if err != nil || !httpMethods[string(head)] {
		l.log.Info("connection", "role", string(rolePostgres), "remote", c.RemoteAddr().String(),
			"first_bytes", len(head), "action", "closed")
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	select {
	case l.conns <- &peekedConn{Conn: c, r: br}:
	case <-l.done:
		_ = c.Close()
	}
}

// Accept returns the next HTTP connection.
func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes connections not handed over yet and
// waits for the accept loop and the sniffers.
func (l *sniffListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

func (l *sniffListener) Addr() net.Addr { return l.ln.Addr() }

// peekedConn reads the sniffed bytes first.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
