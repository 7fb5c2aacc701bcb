package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownTimeout bounds the wait for running requests after SIGTERM;
// Docker stops containers with a 10 s grace period.
const shutdownTimeout = 3 * time.Second

func main() {
	cfg, err := loadConfig(os.Environ(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatui-sim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil))
	if err := run(ctx, cfg, logger); err != nil {
		fmt.Fprintln(os.Stderr, "chatui-sim:", err)
		os.Exit(1)
	}
}

// run listens on cfg.Addr and serves until ctx ends.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, cfg, ln, logger)
}

// serve answers on ln until ctx ends, then shuts down: requests get
// shutdownTimeout to finish, while streams and websockets, whose context
// ends at once, stop sooner. It closes ln.
func serve(ctx context.Context, cfg config, ln net.Listener, logger *slog.Logger) error {
	s, err := newServer(cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	if cfg.Role == rolePostgres {
		ln = newSniffListener(ln, logger, sniffTimeout)
	}

	// Requests' contexts end when shutdown starts; a websocket, hijacked,
	// is not otherwise told.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(cancelBase)

	logger.Info("listening", "role", string(cfg.Role), "role_from", cfg.RoleFrom, "addr", ln.Addr().String(),
		"data_dir", cfg.DataDir, "upstream", cfg.UpstreamBase)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		ln.Close()
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
