// Package simimage builds a Docker image of the chat UI stand-in
// (cmd/chatui-sim) for integration tests that need containers standing in
// for Open WebUI, LobeChat, and LobeChat's PostgreSQL and MinIO. The image
// is FROM scratch, so no registry is needed. Its entrypoint is the binary
// with no CMD: the role comes from SIM_ROLE, a first argument naming it,
// or the variables the real image would be given (see cmd/chatui-sim).
package simimage

import (
	"context"
	"testing"

	"corral/engine/enginetest"
)

// Repository is the image name; the tag is the first 12 hex digits of the
// sha256 of the binary and its Dockerfile, so an unchanged simulator reuses
// its image.
const Repository = "corral-chatui-sim"

// Label marks everything tests create, for cleanup.
const Label = enginetest.Label

const dockerfile = `FROM scratch
COPY chatui-sim /chatui-sim
EXPOSE 8080 3210 5432 9000
LABEL corral.test=true
ENTRYPOINT ["/chatui-sim"]
`

// image is built once per test process (see enginetest.GoImage): the
// package's only mutable state, the accepted exception for a test helper.
var image = &enginetest.GoImage{Repository: Repository, Package: "./cmd/chatui-sim", File: "chatui-sim", Dockerfile: dockerfile}

// Build compiles the simulator statically and builds its image unless an
// image with the same tag exists. It returns the image reference.
func Build(ctx context.Context) (string, error) { return image.Build(ctx) }

// Image returns the simulator image, building it once per test process.
// It skips the test when no Docker daemon answers and fails it on any
// other error.
func Image(t testing.TB) string { return image.Image(t) }
