// Package simimage builds a Docker image of the Ollama simulator
// (cmd/ollama-sim) for integration tests that need a container standing in
// for ollama/ollama. The image is FROM scratch, so no registry is needed;
// like the real image its entrypoint is /bin/ollama with CMD ["serve"],
// and it listens on 0.0.0.0:11434.
package simimage

import (
	"context"
	"testing"

	"corral/engine/enginetest"
)

// Repository is the image name; the tag is the first 12 hex digits of the
// binary's sha256, so an unchanged simulator reuses its image.
const Repository = "corral-ollama-sim"

// Label marks everything tests create, for cleanup.
const Label = enginetest.Label

const dockerfile = `FROM scratch
COPY ollama /bin/ollama
ENV HOME=/root OLLAMA_HOST=0.0.0.0:11434
EXPOSE 11434
LABEL corral.test=true
ENTRYPOINT ["/bin/ollama"]
CMD ["serve"]
`

// image is built once per test process (see enginetest.GoImage): the
// package's only mutable state, the accepted exception for a test helper.
var image = &enginetest.GoImage{Repository: Repository, Package: "./cmd/ollama-sim", File: "ollama", Dockerfile: dockerfile}

// Build compiles the simulator statically and builds its image unless an
// image with the same tag exists. It returns the image reference.
func Build(ctx context.Context) (string, error) { return image.Build(ctx) }

// Image returns the simulator image, building it once per test process.
// It skips the test when no Docker daemon answers and fails it on any
// other error.
func Image(t testing.TB) string { return image.Image(t) }
