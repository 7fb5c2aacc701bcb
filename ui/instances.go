package ui

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// Weight is the body of PUT /api/v1/instances/:name/weight.
type Weight struct {
	Weight int `json:"weight"`
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
