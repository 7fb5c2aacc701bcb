package ui

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// Backup hands out a consistent copy of the whole store: keys, usage,
// settings, certificates, the chat UI's secrets.
type Backup interface {
	// Backup writes the copy to w; size learns its length before the
	// first byte.
	Backup(w io.Writer, size func(int64)) (int64, error)
}

// backup answers GET /api/v1/backup with the store as a download. It is
// what corral backup fetches while corral serves (the daemon holds the
// store's lock), and what the admin pages link to. The copy holds
// secrets: the admin listener serves it only with the token or a
// session, like the rest of the API.
func (h handler) backup(c *gin.Context) {
	name := "corral-backup-" + time.Now().UTC().Format("20060102-150405") + ".db"
	started := false
	_, err := h.Backup.Backup(c.Writer, func(n int64) {
		started = true
		c.Header("Content-Type", "application/octet-stream")
		c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
		c.Header("Content-Length", strconv.FormatInt(n, 10))
		c.Header("Cache-Control", "no-store")
		c.Status(http.StatusOK)
	})
	if err != nil && !started {
		c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
	}
	// An error after the first byte leaves the body shorter than its
	// Content-Length: the client sees a cut-off download, never a whole
	// looking one.
}
