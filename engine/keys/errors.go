package keys

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of Authorize. Their messages go to API clients as they are: one
// line that says what to do.
var (
	ErrNoKey      = errors.New("API key required: send Authorization: Bearer crl_... (ask the admin for a key)")
	ErrUnknownKey = errors.New("unknown API key: check that it was copied whole, or ask the admin for a new one")
	ErrRevoked    = errors.New("API key revoked: ask the admin for a new one")
	ErrExpired    = errors.New("API key expired: ask the admin for a new one")
)

// Kinds of admin errors, for errors.Is; the errors themselves carry a
// message for the admin.
var (
	ErrInvalid        = errors.New("invalid API key request")
	ErrNotFound       = errors.New("no such API key")
	ErrNameTaken      = errors.New("API key name taken")
	ErrAlreadyRevoked = errors.New("API key already revoked")
)

// adminError is an error of kind with its own message.
type adminError struct {
	kind error
	msg  string
}

func (e adminError) Error() string     { return e.msg }
func (e adminError) Is(err error) bool { return err == e.kind }

func adminErrorf(kind error, format string, args ...any) error {
	return adminError{kind, fmt.Sprintf(format, args...)}
}

// ModelError refuses a model that the key may not use. The gateway
// answers 403 rather than 401 for it, which it learns from Forbidden.
type ModelError struct {
	Model   string   // as the request named it
	Allowed []string // what the key may use
}

func (e *ModelError) Error() string {
	return fmt.Sprintf("this API key may not use model %q (it may use %s): ask the admin to allow it, or pick one of those",
		e.Model, strings.Join(e.Allowed, ", "))
}

// Forbidden reports that the key is good but the request is not allowed.
func (e *ModelError) Forbidden() bool { return true }
