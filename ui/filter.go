package ui

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Filter is the content filter's phrase list.
type Filter interface {
	Phrases() []string
	SetPhrases(ctx context.Context, phrases []string) error
}

// FilterList is the body of GET and PUT /api/v1/filter.
type FilterList struct {
	Phrases []string `json:"phrases"`
	Enabled bool     `json:"enabled"`
}

func (h handler) getFilter(c *gin.Context) {
	p := h.Filter.Phrases()
	c.JSON(http.StatusOK, FilterList{Phrases: p, Enabled: len(p) > 0})
}

func (h handler) setFilter(c *gin.Context) {
	var req FilterList
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := h.Filter.SetPhrases(c.Request.Context(), req.Phrases); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	h.getFilter(c)
}
