package ui

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Weight is the body of PUT /api/v1/instances/:name/weight.
type Weight struct {
	Weight int `json:"weight"`
}

// containerAction answers a restart or recreate of the container named
// in the path with the status after it.
func (h handler) containerAction(act func(Engine, context.Context, string) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := act(h.Engine, c.Request.Context(), c.Param("name")); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusOK, h.Engine.Status())
	}
}

func (h handler) setWeight(c *gin.Context) {
	var req Weight
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := h.Engine.SetWeight(c.Param("name"), req.Weight); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, h.Engine.Status())
}
