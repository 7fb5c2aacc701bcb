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
// sha256 of the binary and its Dockerfile, so an unchanged simulator reuses
// its image.
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

// demoDockerfile is the image for people trying corral (scripts/sim-image,
// the quick start in README.md): the same binary, paced like a small model
// on a GPU, so a streamed reply arrives word by word (40 words, about 20 a
// second) rather than all at once.
const demoDockerfile = `FROM scratch
COPY ollama /bin/ollama
ENV HOME=/root OLLAMA_HOST=0.0.0.0:11434
ENV SIM_FIRST_TOKEN_DELAY=200ms SIM_TOKEN_INTERVAL=50ms SIM_DEFAULT_TOKENS=40
EXPOSE 11434
ENTRYPOINT ["/bin/ollama"]
CMD ["serve"]
`

// image is built once per test process (see enginetest.GoImage): the
// package's only mutable state, the accepted exception for a test helper.
var image = &enginetest.GoImage{Repository: Repository, Package: "./cmd/ollama-sim", File: "ollama", Dockerfile: dockerfile}

// demo is the paced image; it never serves a test.
var demo = &enginetest.GoImage{Repository: Repository, Package: "./cmd/ollama-sim", File: "ollama", Dockerfile: demoDockerfile}

// BuildDemo builds the paced image for people, as Build does the tests'
// one, and returns its reference.
func BuildDemo(ctx context.Context) (string, error) { return demo.Build(ctx) }

// Build compiles the simulator statically and builds its image unless an
// image with the same tag exists. It returns the image reference.
func Build(ctx context.Context) (string, error) { return image.Build(ctx) }

// Image returns the simulator image, building it once per test process.
// It skips the test when no Docker daemon answers and fails it on any
// other error.
func Image(t testing.TB) string { return image.Image(t) }
