package h1

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves Handler on the listeners given to Serve.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's headers; IdleTimeout
	// the wait for the next request on a kept-alive connection (zero:
	// ReadHeaderTimeout). Zero is no limit, as in net/http.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	Logger            *slog.Logger // nil: slog.Default()

	once     sync.Once
	fallback *http.Server
	handoff  *handoffListener
	closing  atomic.Bool
	date     atomic.Pointer[cachedDate]

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	wg        sync.WaitGroup // connection and fallback goroutines
}

// maxHeaderBytes is net/http's default limit and the slack it reads
// beyond it: headers larger than that go to net/http, which answers 431.
const maxHeaderBytes = http.DefaultMaxHeaderBytes + 4096

func (s *Server) init() {
	s.once.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		s.handoff = newHandoffListener()
		s.fallback = &http.Server{
			Handler:           s.Handler,
			ReadHeaderTimeout: s.ReadHeaderTimeout,
			IdleTimeout:       s.IdleTimeout,
			ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
		}
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		s.wg.Go(func() { s.fallback.Serve(s.handoff) })
	})
}

// Serve accepts connections on l until Shutdown or Close, and returns
// http.ErrServerClosed then, as net/http does.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and go on, as
			// net/http does, rather than stop serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Logger.Warn("accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return http.ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in flight to finish or ctx to end; connections handed to
// net/http are shut down by it alike.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.stopAccepting()
	ferr := make(chan error, 1)
	go func() { ferr <- s.fallback.Shutdown(ctx) }()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.closeIdle() {
			err := <-ferr
			s.wg.Wait()
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.init()
	s.stopAccepting()
	err := s.fallback.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	return err
}

func (s *Server) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	s.handoff.Close()
}

// closeIdle closes connections waiting for a request and reports whether
// none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

// handoffListener is how connections reach the net/http server.
type handoffListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	}
}

func (h *handoffListener) Close() error {
	h.once.Do(func() { close(h.closed) })
	return nil
}

func (h *handoffListener) Addr() net.Addr { return handoffAddr{} }

// give passes c to net/http, or reports that it has stopped.
func (h *handoffListener) give(c net.Conn) bool {
	select {
	case h.ch <- c:
		return true
	case <-h.closed:
		return false
	}
}

type handoffAddr struct{}

func (handoffAddr) Network() string { return "h1-handoff" }
func (handoffAddr) String() string  { return "h1-handoff" }

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
