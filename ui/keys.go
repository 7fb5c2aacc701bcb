package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine/keys"
)

// Keys is what the API needs to manage the gateway's API keys.
type Keys interface {
	Create(ctx context.Context, o keys.CreateOptions) (secret string, k keys.Key, err error)
	Revoke(ctx context.Context, name string) (keys.Key, error)
	List() []keys.Key
	SetLimits(ctx context.Context, name string, l keys.Limits) (keys.Key, error)
	RotateInternal(ctx context.Context) (secret string, err error)
}

// maxBody caps the size of a request body.
const maxBody = 64 << 10

// NewKey is the body of POST /api/v1/keys.
type NewKey struct {
	Name      string    `json:"name"`
	Note      string    `json:"note,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // RFC 3339; absent: never
	Models    []string  `json:"models,omitempty"`    // absent or empty: all models
}

// CreatedKey answers POST /api/v1/keys. It is the only answer that holds
// the secret.
type CreatedKey struct {
	Secret string `json:"key"`
	keys.Key
}

// KeyList is the body of GET /api/v1/keys.
type KeyList struct {
	Keys []keys.Key `json:"keys"`
}

func (h handler) listKeys(c *gin.Context) {
	c.JSON(http.StatusOK, KeyList{Keys: h.Keys.List()})
}

func (h handler) createKey(c *gin.Context) {
	var req NewKey
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	secret, k, err := h.Keys.Create(c.Request.Context(), keys.CreateOptions{
		Name:          req.Name,
		Note:          req.Note,
		ExpiresAt:     req.ExpiresAt,
		AllowedModels: req.Models,
	})
	if err != nil {
		keyError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, CreatedKey{Secret: secret, Key: k})
}

func (h handler) revokeKey(c *gin.Context) {
	k, err := h.Keys.Revoke(c.Request.Context(), c.Param("name"))
	if err != nil {
		keyError(c, err)
		return
	}
	c.JSON(http.StatusOK, k)
}

// KeyLimits is the body of PUT /api/v1/keys/:name/limits. A field left
// out keeps its value; 0 means unlimited for the caps and the default
// for the queue settings.
type KeyLimits struct {
	RequestsPerMinute *int64 `json:"requests_per_minute,omitempty"`
	TokensPerMinute   *int64 `json:"tokens_per_minute,omitempty"`
	TokensPerDay      *int64 `json:"tokens_per_day,omitempty"`
	TokensPerMonth    *int64 `json:"tokens_per_month,omitempty"`

	Weight         *int64 `json:"weight,omitempty"`           // share of busy instances; 0 counts as 1
	Batch          *bool  `json:"batch,omitempty"`            // true: waits behind every interactive request
	MaxQueue       *int64 `json:"max_queue,omitempty"`        // requests it may have waiting; 0: the server's default
	MaxWaitSeconds *int64 `json:"max_wait_seconds,omitempty"` // longest wait in the queue; 0: the server's default
}

func (h handler) setKeyLimits(c *gin.Context) {
	var req KeyLimits
	if err := decodeBody(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if req == (KeyLimits{}) {
		c.JSON(http.StatusBadRequest, gin.H{"error": "no limit given: set one or more of requests_per_minute, tokens_per_minute, tokens_per_day, tokens_per_month (0 is unlimited), weight, batch, max_queue, max_wait_seconds (0 is the default)"})
		return
	}
	// The merge reads, then writes: of two changes to one key at the same
	// moment, one may undo the other's fields. Admin edits are rare.
	name := c.Param("name")
	var l keys.Limits
	for _, k := range h.Keys.List() {
		if k.Name == name {
			l = k.Limits
		}
	}
	for _, f := range []struct {
		from *int64
		to   *int64
	}{
		{req.RequestsPerMinute, &l.RequestsPerMinute},
		{req.TokensPerMinute, &l.TokensPerMinute},
		{req.TokensPerDay, &l.TokensPerDay},
		{req.TokensPerMonth, &l.TokensPerMonth},
		{req.Weight, &l.Weight},
		{req.MaxQueue, &l.MaxQueue},
		{req.MaxWaitSeconds, &l.MaxWaitSeconds},
	} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	if req.Batch != nil {
		l.Batch = *req.Batch
	}
	k, err := h.Keys.SetLimits(c.Request.Context(), name, l)
	if err != nil {
		keyError(c, err)
		return
	}
	c.JSON(http.StatusOK, k)
}

// rotateInternalKey renews corral's own key for the chat UI and answers
// with its new secret, like a create.
func (h handler) rotateInternalKey(c *gin.Context) {
	secret, err := h.Keys.RotateInternal(c.Request.Context())
	if err != nil {
		keyError(c, err)
		return
	}
	out := CreatedKey{Secret: secret}
	for _, k := range h.Keys.List() {
		if k.Name == keys.InternalName {
			out.Key = k
		}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// keyError answers with err's message and the status its kind calls for.
func keyError(c *gin.Context, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, keys.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, keys.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, keys.ErrNameTaken), errors.Is(err, keys.ErrAlreadyRevoked):
		code = http.StatusConflict
	}
	c.JSON(code, gin.H{"error": err.Error()})
}

// decodeBody reads one JSON object of at most maxBody bytes into v,
// refusing fields v does not have, so a misspelt field is not ignored.
func decodeBody(c *gin.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value: send one object")
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return fmt.Errorf("request body is over %d KiB", maxBody>>10)
	case errors.Is(err, io.EOF):
		return errors.New("request body is empty: send a JSON object")
	default:
		return fmt.Errorf("bad request body: %v", err)
	}
}
