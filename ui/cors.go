package ui

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// CORS is the list of browser origins (web pages) that may call the
// gateway.
type CORS interface {
	Origins() []string
	SetOrigins(ctx context.Context, origins []string) error
}

// CORSSettings is the body of GET and PUT /api/v1/settings/cors. Origins
// are "scheme://host[:port]" (http or https, no path), or "*" for any;
// empty turns CORS off, the default. Enabled is for reading: whether any
// origin is allowed. GET answers the list as stored (normalised: lower
// case, no default port, and ["*"] alone when it holds "*"); PUT
// replaces it, answers as GET does, or 400 with {"error"} naming every
// bad origin, and changes nothing then.
type CORSSettings struct {
	Origins []string `json:"origins"`
	Enabled bool     `json:"enabled"`
}

func (h handler) getCORS(c *gin.Context) {
	o := h.CORS.Origins()
	c.JSON(http.StatusOK, CORSSettings{Origins: o, Enabled: len(o) > 0})
}

func (h handler) setCORS(c *gin.Context) {
	var req CORSSettings
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := h.CORS.SetOrigins(c.Request.Context(), req.Origins); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	h.getCORS(c)
}
