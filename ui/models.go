package ui

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"corral/engine/models"
)

// Models is what the API needs of the model manager.
type Models interface {
	Catalogue() []models.Model
	Pull(model string) (*models.Pull, error)
	CancelPull(model string) error
	Delete(ctx context.Context, model string) error
	Place(ctx context.Context, p models.Placement) error
	Unplace(model string) error
	Placements() []models.Placement
	ImportFile(ctx context.Context, in models.Import, r io.Reader, progress func(models.Event)) error
}

// ModelName is the body of the model operations.
type ModelName struct {
	Model string `json:"model"`
}

func modelError(c *gin.Context, err error) {
	code := http.StatusBadRequest
	switch {
	case errors.Is(err, models.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, models.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, models.ErrUnavailable):
		code = http.StatusServiceUnavailable
	}
	c.JSON(code, gin.H{"error": err.Error()})
}

func (h handler) listModels(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"models": h.Models.Catalogue(), "placements": h.Models.Placements()})
}

// pullModel starts (or joins) a pull and streams its events as SSE until
// it ends. A watcher leaving does not stop the pull; cancel does.
func (h handler) pullModel(c *gin.Context) {
	var req ModelName
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	p, err := h.Models.Pull(req.Model)
	if err != nil {
		modelError(c, err)
		return
	}
	startSSE(c)
	for ev := range p.Watch(c.Request.Context()) {
		raw, _ := json.Marshal(ev)
		if err := sseData(c.Writer, raw); err != nil {
			return
		}
	}
}

func (h handler) cancelPull(c *gin.Context) {
	var req ModelName
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := h.Models.CancelPull(req.Model); err != nil {
		modelError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"cancelled": models.Canonical(req.Model)})
}

func (h handler) deleteModel(c *gin.Context) {
	var req ModelName
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := h.Models.Delete(c.Request.Context(), req.Model); err != nil {
		modelError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"deleted": models.Canonical(req.Model)})
}

func (h handler) placeModel(c *gin.Context) {
	var req models.Placement
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := h.Models.Place(c.Request.Context(), req); err != nil {
		modelError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"placements": h.Models.Placements()})
}

func (h handler) unplaceModel(c *gin.Context) {
	if err := h.Models.Unplace(c.Query("model")); err != nil {
		modelError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"placements": h.Models.Placements()})
}

// importModel creates a model from the GGUF file in the request body
// (query: name, file, template, system, param=k=v...) and streams progress
// as SSE; the last event says success or the error.
func (h handler) importModel(c *gin.Context) {
	q := c.Request.URL.Query()
	params, err := models.ParseParams(q["param"])
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := checkImportName(q.Get("name")); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	in := models.Import{Name: q.Get("name"), FileName: q.Get("file"), Template: q.Get("template"), System: q.Get("system"), Parameters: params}
	// Progress goes out while the upload still comes in: without full
	// duplex, Go's HTTP/1 server cuts the request body once the response
	// has started.
	if err := http.NewResponseController(c.Writer).EnableFullDuplex(); err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": "upload needs a full-duplex connection: " + err.Error()})
		return
	}
	startSSE(c)
	send := func(ev models.Event) {
		raw, _ := json.Marshal(ev)
		sseData(c.Writer, raw) // a client gone shows in the upload's read
	}
	if err := h.Models.ImportFile(c.Request.Context(), in, c.Request.Body, send); err != nil {
		send(models.Event{Model: models.Canonical(in.Name), Status: "error", Error: err.Error(), Done: true})
	}
}
