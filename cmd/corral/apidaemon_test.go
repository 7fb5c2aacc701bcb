package main

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine/store"
	"corral/ui"
)

// serveAPI serves the real admin API, with the parts deps builds on a
// fresh store, on the control socket of a temporary data dir, as corral
// serve does. It returns the data dir.
func serveAPI(t *testing.T, deps func(st *store.Store) ui.Deps) string {
	t.Helper()
	dataDir := t.TempDir()
	st, err := store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := deps(st)
	l, err := net.Listen("unix", socketPath(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	srv := &http.Server{Handler: ui.NewAPI(d), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return dataDir
}
