package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
)

// /api/create and /api/blobs: enough of Ollama's import path to simulate
// an offline GGUF import (upload the file as a blob, create a model from
// its digest) and derived models ("from" another model, with a template,
// system prompt, license or parameters of its own).

const (
	mediaModel     = "application/vnd.ollama.image.model"
	mediaAdapter   = "application/vnd.ollama.image.adapter"
	mediaProjector = "application/vnd.ollama.image.projector"
	mediaTemplate  = "application/vnd.ollama.image.template"
	mediaSystem    = "application/vnd.ollama.image.system"
	mediaLicense   = "application/vnd.ollama.image.license"
	mediaParams    = "application/vnd.ollama.image.params"
	mediaConfig    = "application/vnd.docker.container.image.v1+json"
)

// createLayer is a layer and the status line it reports.
type createLayer struct {
	layer
	status string
}

func (s *server) handleCreate(w http.ResponseWriter, r *http.Request) error {
	var req CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	for f := range req.Files {
		if !fs.ValidPath(f) {
			return errorf(http.StatusBadRequest, "file path must be relative")
		}
	}
	n := parseName(cmp.Or(req.Model, req.Name))
	if !n.valid() {
		return errorf(http.StatusBadRequest, "invalid model name")
	}
	n = s.store.resolve(n)
	p := newProgress(w, streamOf(req.Stream))
	err := s.create(r.Context(), n, req, p.send)
	if err == nil {
		s.stats.created()
		err = p.send(ProgressResponse{Status: "success"})
	}
	p.end(err)
	return nil
}

func (s *server) create(ctx context.Context, n name, req CreateRequest, send func(ProgressResponse) error) error {
	cfg := configV2{Architecture: "amd64", OS: "linux", RootFS: rootFS{Type: "layers"}}
	var layers []createLayer
	var err error
	switch {
	case req.From != "":
		layers, err = s.layersFrom(ctx, req.From, send)
	case req.Files != nil:
		layers, err = s.layersFromFiles(req.Files, send)
	default:
		return errorf(http.StatusBadRequest, "neither 'from' or 'files' was specified")
	}
	if err != nil {
		return err
	}
	if len(req.Adapters) > 0 {
		return errorf(http.StatusBadRequest, "ollama-sim: adapters are not simulated")
	}
	applyInfo(&cfg, req.Info)

	for _, l := range layers {
		if l.MediaType != mediaModel {
			continue
		}
		p, err := s.store.blobPath(l.Digest)
		if err != nil {
			return err
		}
		kv, err := readGGUF(p)
		if err != nil {
			return err
		}
		arch, _ := kv["general.architecture"].(string)
		params, _ := ggufUint(kv, "general.parameter_count")
		ft, _ := ggufUint(kv, "general.file_type")
		if req.Quantize != "" {
			if name := fileTypeName(ft); name != "F16" && name != "F32" {
				return errors.New("quantization is only supported for F16 and F32 models")
			}
			return errors.New("ollama-sim: quantization is not simulated")
		}
		cfg.ModelFormat = cmp.Or(cfg.ModelFormat, "gguf")
		cfg.ModelFamily = cmp.Or(cfg.ModelFamily, arch)
		cfg.ModelType = cmp.Or(cfg.ModelType, humanNumber(params))
		cfg.FileType = cmp.Or(cfg.FileType, fileTypeName(ft))
		cfg.ModelFamilies = append(cfg.ModelFamilies, arch)
	}

	if req.Template != "" {
		if layers, err = s.replaceLayer(layers, mediaTemplate, req.Template); err != nil {
			return err
		}
	}
	if req.System != "" {
		if layers, err = s.replaceLayer(layers, mediaSystem, req.System); err != nil {
			return err
		}
	}
	licenses, err := licenseTexts(req.License)
	if err != nil {
		return err
	}
	for _, l := range licenses {
		nl, err := s.newLayer(mediaLicense, []byte(l))
		if err != nil {
			return err
		}
		layers = append(layers, nl)
	}
	if layers, err = s.mergeParams(layers, req.Parameters); err != nil {
		return err
	}

	m := manifest{SchemaVersion: 2, MediaType: "application/vnd.docker.distribution.manifest.v2+json"}
	for _, l := range layers {
		m.Layers = append(m.Layers, l.layer)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.Digest)
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgLayer, err := s.newLayer(mediaConfig, cfgBytes)
	if err != nil {
		return err
	}
	m.Config = cfgLayer.layer

	for _, l := range layers {
		if l.status != "" {
			if err := send(ProgressResponse{Status: l.status}); err != nil {
				return err
			}
		}
	}
	if err := send(ProgressResponse{Status: "writing manifest"}); err != nil {
		return err
	}
	return s.store.writeManifest(n, m)
}

// layersFrom takes the layers of an existing model, pulling it first from
// the catalogue when it is not on disk (as Ollama does).
func (s *server) layersFrom(ctx context.Context, ref string, send func(ProgressResponse) error) ([]createLayer, error) {
	from := parseName(ref)
	if !from.valid() {
		return nil, errorf(http.StatusBadRequest, "invalid model name")
	}
	from = s.store.resolve(from)
	mf, err := s.store.readManifest(from)
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.pull(ctx, from, true, send); err != nil {
			return nil, err
		}
		mf, err = s.store.readManifest(from)
	}
	if err != nil {
		return nil, err
	}
	var out []createLayer
	for _, l := range mf.Layers {
		l.From = from.short()
		out = append(out, createLayer{layer: l, status: "using existing layer " + l.Digest})
	}
	return out, nil
}

// layersFromFiles turns uploaded blobs into layers; only GGUF is accepted.
func (s *server) layersFromFiles(files map[string]string, send func(ProgressResponse) error) ([]createLayer, error) {
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	kind := ""
	for _, f := range names {
		switch {
		case strings.HasSuffix(f, ".safetensors"):
			kind = "safetensors"
		case strings.HasSuffix(f, ".gguf"):
			kind = "gguf"
		default:
			if s.blobIsGGUF(files[f]) {
				kind = "gguf"
			}
		}
		if kind != "" {
			break
		}
	}
	switch kind {
	case "gguf":
	case "safetensors":
		return nil, errorf(http.StatusBadRequest, "ollama-sim: safetensors conversion is not simulated")
	default:
		return nil, errorf(http.StatusBadRequest, "unknown type")
	}

	var out []createLayer
	for _, f := range names {
		digest := files[f]
		if err := send(ProgressResponse{Status: "parsing GGUF"}); err != nil {
			return nil, err
		}
		p, err := s.store.blobPath(digest)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		kv, err := readGGUF(p)
		if errors.Is(err, errNotGGUF) {
			return nil, &apiError{status: http.StatusBadRequest, msg: err.Error()}
		} else if err != nil {
			return nil, err
		}
		media := mediaModel
		_, hasBlocks := kv[fmt.Sprint(kv["general.architecture"])+".block_count"]
		switch {
		case kv["general.type"] == "adapter":
			media = mediaAdapter
		case kv["general.type"] == "projector" || (!hasBlocks && kv["vision.block_count"] != nil):
			media = mediaProjector
		}
		out = append(out, createLayer{
			layer:  layer{MediaType: media, Digest: strings.Replace(digest, "-", ":", 1), Size: fi.Size()},
			status: "using existing layer " + digest,
		})
	}
	return out, nil
}

// blobIsGGUF reports whether a blob starts with the GGUF magic.
func (s *server) blobIsGGUF(digest string) bool {
	p, err := s.store.blobPath(digest)
	if err != nil {
		return false
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, len(ggufMagic))
	_, err = io.ReadFull(f, magic)
	return err == nil && string(magic) == ggufMagic
}

// newLayer stores data as a blob and reports it as Ollama's NewLayer does.
func (s *server) newLayer(mediaType string, data []byte) (createLayer, error) {
	digest := digestOf(data)
	status := "using existing layer " + digest
	if !s.store.hasBlob(digest) {
		status = "creating new layer " + digest
		if err := s.store.writeBlob(digest, data); err != nil {
			return createLayer{}, err
		}
	}
	return createLayer{layer: layer{MediaType: mediaType, Digest: digest, Size: int64(len(data))}, status: status}, nil
}

func (s *server) replaceLayer(layers []createLayer, mediaType, content string) ([]createLayer, error) {
	layers = slices.DeleteFunc(layers, func(l createLayer) bool { return l.MediaType == mediaType })
	nl, err := s.newLayer(mediaType, []byte(content))
	if err != nil {
		return nil, err
	}
	return append(layers, nl), nil
}

// mergeParams is Ollama's setParameters: the request's parameters win over
// those of the base model.
func (s *server) mergeParams(layers []createLayer, p map[string]any) ([]createLayer, error) {
	merged := map[string]any{}
	for _, l := range layers {
		if l.MediaType != mediaParams {
			continue
		}
		data, err := s.store.readBlob(l.Digest)
		if err != nil {
			return nil, err
		}
		var existing map[string]any
		if err := json.Unmarshal(data, &existing); err != nil {
			return nil, err
		}
		for k, v := range existing {
			merged[k] = v
		}
	}
	for k, v := range p {
		merged[k] = v
	}
	if len(p) == 0 {
		return layers, nil
	}
	layers = slices.DeleteFunc(layers, func(l createLayer) bool { return l.MediaType == mediaParams })
	data, err := json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	nl, err := s.newLayer(mediaParams, data)
	if err != nil {
		return nil, err
	}
	return append(layers, nl), nil
}

func licenseTexts(license any) ([]string, error) {
	switch l := license.(type) {
	case nil:
		return nil, nil
	case string:
		if l == "" {
			return nil, nil
		}
		return []string{l}, nil
	default:
		b, _ := json.Marshal(l)
		var out []string
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
		return out, nil
	}
}

// applyInfo copies the "info" overrides of a create request into the
// config, as Ollama's CreateHandler does.
func applyInfo(cfg *configV2, info map[string]any) {
	if info == nil {
		return
	}
	if caps, ok := info["capabilities"].([]any); ok {
		for _, c := range caps {
			if s, ok := c.(string); ok {
				cfg.Capabilities = append(cfg.Capabilities, s)
			}
		}
	}
	str := func(k string) string {
		v, _ := info[k].(string)
		return v
	}
	num := func(k string) int {
		v, _ := info[k].(float64)
		return int(v)
	}
	cfg.ModelFamily = str("model_family")
	if cfg.ModelFamily != "" {
		cfg.ModelFamilies = []string{cfg.ModelFamily}
	}
	cfg.FileType = str("quantization_level")
	cfg.ModelType = str("parameter_size")
	cfg.ContextLen = num("context_length")
	cfg.EmbedLen = num("embedding_length")
}

func (s *server) handleHeadBlob(w http.ResponseWriter, r *http.Request) error {
	digest := r.PathValue("digest")
	p, err := s.store.blobPath(digest)
	if err != nil {
		return errorf(http.StatusBadRequest, "%s", err.Error())
	}
	if _, err := os.Stat(p); err != nil {
		return errorf(http.StatusNotFound, "blob %q not found", digest)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *server) handleCreateBlob(w http.ResponseWriter, r *http.Request) error {
	digest := r.PathValue("digest")
	p, err := s.store.blobPath(digest)
	if err != nil {
		return errorf(http.StatusBadRequest, "%s", err.Error())
	}
	if _, err := os.Stat(p); err == nil {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	got, err := s.store.writeBlobFrom(r.Body)
	if err != nil {
		return err
	}
	if got != digest {
		return errorf(http.StatusBadRequest, "digest mismatch, expected %q, got %q", digest, got)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}
