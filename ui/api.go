// Package ui serves corral's admin JSON API and its admin pages. The API
// answers on the control socket, trusted by file permissions, and on the
// admin listener (NewAdmin), where the pages join it and everything needs
// the admin token or a session signed in with it.
package ui

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine"
	"corral/gpu"
)

// Engine is what the API needs of the engine.
type Engine interface {
	Status() engine.Status
	SetWeight(instance string, weight int) error
	// Restart, Recreate, Stop and Start act on an instance's or the chat
	// UI's container.
	Restart(ctx context.Context, name string) error
	Recreate(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	Start(name string) error
	// Logs writes the container's last tail lines, then (follow) what
	// comes, until ctx ends.
	Logs(ctx context.Context, name string, tail int, follow bool, w io.Writer) error
	// Events are the recent phase changes, newest first ("" for all).
	Events(name string) []engine.Event
}

// InstanceSettings reads and changes what every Ollama instance runs
// with; a change is rolled out one instance at a time.
type InstanceSettings interface {
	InstanceSettings() engine.Settings
	SetInstanceSettings(engine.Settings) error
}

// GPUs is what the API needs to show devices and their metrics.
type GPUs interface {
	Inventory() gpu.Inventory
	Latest() []gpu.Metrics
}

// Deps are the parts the API shows and drives.
type Deps struct {
	Engine Engine
	GPUs   GPUs
	Keys   Keys   // nil: no key endpoints
	Models Models // nil: no model endpoints
	Filter Filter // nil: no filter endpoints
	CORS   CORS   // nil: no CORS settings endpoints
	Usage  Usage  // nil: no usage endpoint
	// FrontDoor reports the listeners, the routing table and the
	// certificates; nil: not shown.
	FrontDoor FrontDoor
	// Scheduler reports corral's queue and what each instance holds;
	// nil: not shown.
	Scheduler Scheduler
	// ChatUI reports the chat UI: its mode, address, and LobeChat's
	// access code; nil: not shown.
	ChatUI FrontDoor
	// Settings changes the instances' image, keep-alive and parallel
	// slots; nil: not offered.
	Settings InstanceSettings
	// Door keeps the domain and chat UI choices; nil: not offered.
	Door FrontDoorSettings
	// Certs reports the front door's certificates; nil: not shown.
	Certs Certificates
	// DataDisk reports the disk that holds the data directory; nil: not
	// watched.
	DataDisk func() (DiskReport, error)
	// Tokens is each instance's generation rate; nil: not shown.
	Tokens interface{ PerSecond() map[string]float64 }
	// Backup copies the store for GET /api/v1/backup (and the settings
	// page's link to it); nil: no such endpoint.
	Backup Backup
	// SignInLink makes a one-time sign-in link for the admin pages; nil:
	// there are none (no admin listener).
	SignInLink func() (string, error)
	// AdminToken rotates the admin token; nil: no such endpoint.
	AdminToken interface {
		RotateToken() (string, error)
	}
}

// FrontDoor is what the API shows of the front door, as JSON.
type FrontDoor interface {
	Status() any
}

// Scheduler is what the API shows of the gateway's scheduler.
type Scheduler interface {
	Status() SchedulerStatus
}

// SchedulerStatus is the scheduler's part of the status: what waits in
// corral's queue, and the models each instance holds or is loading.
type SchedulerStatus struct {
	Queue   []QueueStatus          `json:"queue"`   // by model, then key; empty when nothing waits
	Holding map[string][]HeldModel `json:"holding"` // by instance name, each sorted by model
}

// QueueStatus is what waits in corral's queue for one model from one API
// key.
type QueueStatus struct {
	Model   string        `json:"model"`
	Key     string        `json:"key"`
	Waiting int           `json:"waiting"`
	Oldest  time.Duration `json:"oldest_wait_ns"` // how long the first of them has waited
}

// HeldModel is a model an instance holds, or is loading, as the
// scheduler sees it.
type HeldModel struct {
	Model    string `json:"model"`
	InFlight int    `json:"in_flight"`
	Loading  bool   `json:"loading,omitempty"`
}

// StatusReport is the body of GET /api/v1/status: the engine's status,
// the front door's and the scheduler's.
type StatusReport struct {
	engine.Status
	FrontDoor any              `json:"front_door,omitempty"`
	Scheduler *SchedulerStatus `json:"scheduler,omitempty"`
	ChatUI    any              `json:"chat_ui,omitempty"`
}

// NewAPI builds the admin JSON API under /api/v1. gin's mode is the
// caller's choice (cmd sets release mode).
func NewAPI(d Deps) http.Handler {
	r := gin.New()
	r.Use(gin.Recovery())
	h := handler{d}
	v1 := r.Group("/api/v1")
	v1.GET("/status", h.status)
	v1.GET("/gpus", h.gpus)
	if d.FrontDoor != nil {
		v1.GET("/frontdoor", func(c *gin.Context) { c.JSON(http.StatusOK, d.FrontDoor.Status()) })
	}
	v1.PUT("/instances/:name/weight", h.setWeight)
	if d.AdminToken != nil {
		v1.POST("/admin-token/rotate", h.rotateToken)
	}
	v1.POST("/admin-link", h.signInLink)
	if d.Door != nil {
		v1.GET("/settings/frontdoor", func(c *gin.Context) { c.JSON(http.StatusOK, d.Door.FrontDoorChoice()) })
		v1.PUT("/settings/frontdoor", h.setFrontDoor)
		v1.POST("/restart", func(c *gin.Context) {
			c.JSON(http.StatusAccepted, gin.H{"restarting": true})
			c.Writer.Flush()
			d.Door.Restart()
		})
	}
	v1.POST("/instances/:name/restart", h.containerAction(Engine.Restart))
	v1.POST("/instances/:name/recreate", h.containerAction(Engine.Recreate))
	v1.POST("/instances/:name/stop", h.containerAction(Engine.Stop))
	v1.POST("/instances/:name/start", h.containerAction(func(e Engine, _ context.Context, name string) error { return e.Start(name) }))
	v1.GET("/instances/:name/logs", h.logs)
	v1.GET("/events", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"events": h.Engine.Events(c.Query("instance"))}) })
	if d.Settings != nil {
		v1.GET("/settings/instances", func(c *gin.Context) { c.JSON(http.StatusOK, d.Settings.InstanceSettings()) })
		v1.PUT("/settings/instances", h.setInstanceSettings)
	}
	if d.Filter != nil {
		v1.GET("/filter", h.getFilter)
		v1.PUT("/filter", h.setFilter)
	}
	if d.CORS != nil {
		v1.GET("/settings/cors", h.getCORS)
		v1.PUT("/settings/cors", h.setCORS)
	}
	if d.Models != nil {
		v1.GET("/models", h.listModels)
		v1.POST("/models/pull", h.pullModel)
		v1.POST("/models/pull/cancel", h.cancelPull)
		v1.POST("/models/delete", h.deleteModel)
		v1.POST("/models/import", h.importModel)
		v1.PUT("/placements", h.placeModel)
		v1.DELETE("/placements", h.unplaceModel)
	}
	if d.Keys != nil {
		v1.GET("/keys", h.listKeys)
		v1.POST("/keys", h.createKey)
		v1.DELETE("/keys/:name", h.revokeKey)
		v1.PUT("/keys/:name/limits", h.setKeyLimits)
		v1.POST("/keys/internal/rotate", h.rotateInternalKey)
	}
	if d.Usage != nil {
		v1.GET("/usage", h.usage)
	}
	if d.Backup != nil {
		v1.GET("/backup", h.backup)
	}
	r.NoRoute(func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such endpoint: " + c.Request.Method + " " + c.Request.URL.Path})
	})
	return r
}

type handler struct{ Deps }

func (h handler) status(c *gin.Context) {
	rep := StatusReport{Status: h.Engine.Status()}
	if h.FrontDoor != nil {
		rep.FrontDoor = h.FrontDoor.Status()
	}
	if h.Scheduler != nil {
		st := h.Scheduler.Status()
		rep.Scheduler = &st
	}
	if h.ChatUI != nil {
		rep.ChatUI = h.ChatUI.Status()
	}
	c.JSON(http.StatusOK, rep)
}

// GPUReport is the body of GET /api/v1/gpus.
type GPUReport struct {
	gpu.Inventory
	Metrics []gpu.Metrics `json:"metrics"`
}

// rotateToken answers {"token": NEW}: the one place it is shown.
func (h handler) rotateToken(c *gin.Context) {
	token, err := h.AdminToken.RotateToken()
	if err != nil {
		c.JSON(http.StatusConflict, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": token})
}

// setFrontDoor stores new choices (fields left out stay as stored).
func (h handler) setFrontDoor(c *gin.Context) {
	ch := h.Door.FrontDoorChoice()
	if err := decodeBody(c, &ch); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := h.Door.SetFrontDoorChoice(ch); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, h.Door.FrontDoorChoice())
}

// signInLink answers {"link": URL}, a one-time way into the admin pages.
func (h handler) signInLink(c *gin.Context) {
	if h.SignInLink == nil {
		c.JSON(http.StatusConflict, gin.H{"error": errNoLinks.Error()})
		return
	}
	link, err := h.SignInLink()
	if err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"link": link})
}

func (h handler) gpus(c *gin.Context) {
	c.JSON(http.StatusOK, GPUReport{Inventory: h.GPUs.Inventory(), Metrics: h.GPUs.Latest()})
}
