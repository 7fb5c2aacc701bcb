package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// errManifestNotFound is what Ollama reports when the registry has no such
// model.
var errManifestNotFound = errors.New("pull model manifest: file does not exist")

// progress writes the status lines of pull and create: an NDJSON stream,
// or with "stream": false only the last one (or the error).
type progress struct {
	w      http.ResponseWriter
	stream bool
	nd     ndjson
	latest ProgressResponse
}

func newProgress(w http.ResponseWriter, stream bool) *progress {
	return &progress{w: w, stream: stream, nd: ndjson{w: w}}
}

func (p *progress) send(pr ProgressResponse) error {
	p.latest = pr
	if p.stream {
		return p.nd.line(pr)
	}
	return nil
}

// end finishes the answer as Ollama's streamResponse and waitForStream do:
// an error after the stream began is one more line; otherwise it gets its
// status (500 unless the error carries one).
func (p *progress) end(err error) {
	if err == nil {
		if !p.stream {
			p.w.Header().Set("Content-Type", "application/json")
			writeJSON(p.w, http.StatusOK, p.latest)
		}
		return
	}
	status := http.StatusInternalServerError
	var ae *apiError
	if errors.As(err, &ae) {
		status = ae.status
	}
	body := map[string]string{"error": err.Error()}
	if p.stream && p.nd.started {
		_ = json.NewEncoder(p.w).Encode(body)
		return
	}
	p.w.Header().Set("Content-Type", "application/json")
	writeJSON(p.w, status, body)
}

func (s *server) handlePull(w http.ResponseWriter, r *http.Request) error {
	var req PullRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	n := parseName(cmp.Or(req.Model, req.Name))
	if !n.valid() {
		return errorf(http.StatusBadRequest, "invalid model name")
	}
	n = s.store.resolve(n)
	p := newProgress(w, streamOf(req.Stream))
	err := s.pull(r.Context(), n, true, p.send)
	s.stats.pulled(err == nil)
	if err != nil && r.Context().Err() != nil {
		return nil // the client went away: nothing to answer, no manifest written
	}
	if err == nil {
		err = p.send(ProgressResponse{Status: "success"})
	}
	p.end(err)
	return nil
}

// pull fetches a catalogue model into the store with Ollama's progress
// lines, at the simulated download speed when paced. The manifest is
// written last, so a pull cancelled by ctx leaves none.
func (s *server) pull(ctx context.Context, n name, paced bool, send func(ProgressResponse) error) error {
	if err := send(ProgressResponse{Status: "pulling manifest"}); err != nil {
		return err
	}
	entry, ok := lookupCatalog(n)
	if !ok {
		return errManifestNotFound
	}
	img := entry.image()
	layers := append(append([]layer{}, img.manifest.Layers...), img.manifest.Config)
	knobs := s.sim.get()
	total := img.manifest.size()

	for _, l := range layers {
		status := "pulling " + l.Digest[7:19]
		if s.store.hasBlob(l.Digest) {
			if err := send(ProgressResponse{Status: status, Digest: l.Digest, Total: l.Size, Completed: l.Size}); err != nil {
				return err
			}
			continue
		}
		if err := send(ProgressResponse{Status: status, Digest: l.Digest, Total: l.Size}); err != nil {
			return err
		}
		var d time.Duration
		switch {
		case !paced:
		case knobs.PullDuration > 0:
			d = time.Duration(float64(knobs.PullDuration) * float64(l.Size) / float64(total))
		case knobs.PullBytesPerSec > 0:
			d = time.Duration(float64(l.Size) / float64(knobs.PullBytesPerSec) * float64(time.Second))
		}
		const tick = 100 * time.Millisecond
		var elapsed time.Duration
		for elapsed < d {
			step := min(tick, d-elapsed)
			if err := s.clock.Sleep(ctx, step); err != nil {
				return err
			}
			elapsed += step
			done := int64(float64(l.Size) * float64(elapsed) / float64(d))
			if elapsed < d {
				if err := send(ProgressResponse{Status: status, Digest: l.Digest, Total: l.Size, Completed: done}); err != nil {
					return err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := send(ProgressResponse{Status: status, Digest: l.Digest, Total: l.Size, Completed: l.Size}); err != nil {
			return err
		}
		if err := s.store.writeBlob(l.Digest, img.blobs[l.Digest]); err != nil {
			return err
		}
	}

	if err := send(ProgressResponse{Status: "verifying sha256 digest"}); err != nil {
		return err
	}
	if err := send(ProgressResponse{Status: "writing manifest"}); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.store.writeManifest(n, img.manifest)
}

// installPreset writes a catalogue model into the store unless it is
// there already.
func (s *server) installPreset(ref string) error {
	n := parseName(ref)
	if _, err := s.store.readManifest(n); err == nil {
		return nil
	}
	return s.pull(s.ctx, n, false, func(ProgressResponse) error { return nil })
}
