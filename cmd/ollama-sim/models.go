package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The model store keeps Ollama's on-disk layout, so that several simulators
// sharing one models volume see each other's pulls:
//
//	<models>/manifests/<host>/<namespace>/<model>/<tag>   manifest JSON
//	<models>/blobs/sha256-<hex>                            layer content
//
// Nothing is cached: every call reads the directory again.

// errInvalidDigest is Ollama's message for a malformed blob digest.
var errInvalidDigest = errors.New("invalid digest format")

var digestPattern = regexp.MustCompile(`^sha256[:-][0-9a-fA-F]{64}$`)

// manifest is an Ollama (Docker v2) image manifest.
type manifest struct {
	SchemaVersion int     `json:"schemaVersion"`
	MediaType     string  `json:"mediaType"`
	Config        layer   `json:"config"`
	Layers        []layer `json:"layers"`
}

// layer is one manifest entry.
type layer struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	From      string `json:"from,omitempty"`
}

// size is the total of all layers, as /api/tags reports it.
func (m manifest) size() int64 {
	total := m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	return total
}

// configV2 is the config blob of a model (Ollama's model.ConfigV2).
type configV2 struct {
	ModelFormat   string   `json:"model_format"`
	ModelFamily   string   `json:"model_family"`
	ModelFamilies []string `json:"model_families"`
	ModelType     string   `json:"model_type"`
	FileType      string   `json:"file_type"`
	Capabilities  []string `json:"capabilities,omitempty"`
	ContextLen    int      `json:"context_length,omitempty"`
	EmbedLen      int      `json:"embedding_length,omitempty"`
	Architecture  string   `json:"architecture"`
	OS            string   `json:"os"`
	RootFS        rootFS   `json:"rootfs"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// store reads and writes the models directory.
type store struct {
	dir string
}

func (st *store) manifestsDir() string { return filepath.Join(st.dir, "manifests") }
func (st *store) blobsDir() string     { return filepath.Join(st.dir, "blobs") }

// blobPath maps "sha256:<hex>" (or "sha256-<hex>") to its file.
func (st *store) blobPath(digest string) (string, error) {
	if !digestPattern.MatchString(digest) {
		return "", errInvalidDigest
	}
	return filepath.Join(st.blobsDir(), strings.Replace(digest, ":", "-", 1)), nil
}

func (st *store) hasBlob(digest string) bool {
	p, err := st.blobPath(digest)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// writeBlob stores data under digest unless it is already there.
func (st *store) writeBlob(digest string, data []byte) error {
	p, err := st.blobPath(digest)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return writeFileAtomic(p, data)
}

// writeBlobFrom copies r into the blob store and returns its digest.
func (st *store) writeBlobFrom(r io.Reader) (string, error) {
	if err := os.MkdirAll(st.blobsDir(), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(st.blobsDir(), ".tmp-sha256-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	digest := fmt.Sprintf("sha256:%x", h.Sum(nil))
	p, err := st.blobPath(digest)
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", err
	}
	return digest, os.Chmod(p, 0o644)
}

func (st *store) readBlob(digest string) ([]byte, error) {
	p, err := st.blobPath(digest)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// storedManifest is a manifest read from disk with what Ollama derives
// from the file itself.
type storedManifest struct {
	manifest
	name     name
	digest   string // sha256 of the manifest file, hex
	modified time.Time
}

func (st *store) readManifest(n name) (*storedManifest, error) {
	if !n.valid() {
		return nil, fmt.Errorf("unqualified name: %s: %w", n, fs.ErrNotExist)
	}
	p := filepath.Join(st.manifestsDir(), n.filepath())
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	var m storedManifest
	if err := json.Unmarshal(data, &m.manifest); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	m.name = n
	m.digest = hex.EncodeToString(sum[:])
	m.modified = fi.ModTime()
	return &m, nil
}

// writeManifest writes the manifest atomically, so that another instance
// never reads half a file.
func (st *store) writeManifest(n name, m manifest) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(st.manifestsDir(), n.filepath()), data)
}

// manifests lists every model on disk, skipping unreadable entries as
// Ollama does.
func (st *store) manifests() ([]*storedManifest, error) {
	matches, err := filepath.Glob(filepath.Join(st.manifestsDir(), "*", "*", "*", "*"))
	if err != nil {
		return nil, err
	}
	var out []*storedManifest
	for _, match := range matches {
		fi, err := os.Stat(match)
		if err != nil || fi.IsDir() {
			continue
		}
		rel, err := filepath.Rel(st.manifestsDir(), match)
		if err != nil {
			continue
		}
		n := nameFromFilepath(rel)
		if !n.valid() {
			continue
		}
		m, err := st.readManifest(n)
		if err != nil {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// resolve is Ollama's getExistingName: parts that match an existing model
// case-insensitively take that model's spelling.
func (st *store) resolve(n name) name {
	if n.valid() {
		if _, err := os.Stat(filepath.Join(st.manifestsDir(), n.filepath())); err == nil {
			return n // spelled as on disk: the common case, without a scan
		}
	}
	existing, err := st.manifests()
	if err != nil {
		return n
	}
	var setHost, setNamespace, setModel, setTag bool
	for _, e := range existing {
		if !setHost && strings.EqualFold(e.name.host, n.host) {
			n.host = e.name.host
			setHost = true
		}
		if !setNamespace && strings.EqualFold(e.name.namespace, n.namespace) {
			n.namespace = e.name.namespace
			setNamespace = true
		}
		if !setModel && strings.EqualFold(e.name.model, n.model) {
			n.model = e.name.model
			setModel = true
		}
		if !setTag && strings.EqualFold(e.name.tag, n.tag) {
			n.tag = e.name.tag
			setTag = true
		}
	}
	return n
}

// remove deletes a model's manifest, then the blobs no other manifest uses,
// then empty directories.
func (st *store) remove(n name) error {
	m, err := st.readManifest(n)
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(st.manifestsDir(), n.filepath())); err != nil {
		return err
	}
	pruneDirs(st.manifestsDir())

	others, err := st.manifests()
	if err != nil {
		return err
	}
	inUse := map[string]bool{}
	for _, o := range others {
		for _, l := range append(slices.Clone(o.Layers), o.Config) {
			inUse[l.Digest] = true
		}
	}
	for _, l := range append(slices.Clone(m.Layers), m.Config) {
		if l.Digest == "" || inUse[l.Digest] {
			continue
		}
		p, err := st.blobPath(l.Digest)
		if err != nil {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// copy copies the manifest file, as Ollama's CopyModel does.
func (st *store) copy(src, dst name) error {
	if src.filepath() == dst.filepath() {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(st.manifestsDir(), src.filepath()))
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(st.manifestsDir(), dst.filepath()), data)
}

// localModel is everything the API needs to know about a model on disk.
type localModel struct {
	name      name
	digest    string // manifest digest, hex
	size      int64
	modified  time.Time
	manifest  manifest
	config    configV2
	kv        map[string]any // GGUF metadata of the model layer
	modelPath string
	template  string
	system    string
	params    map[string]any
	license   []string
}

// model reads a model's manifest and the small blobs that describe it.
func (st *store) model(n name) (*localModel, error) {
	mf, err := st.readManifest(n)
	if err != nil {
		return nil, err
	}
	m := &localModel{
		name:     n,
		digest:   mf.digest,
		size:     mf.size(),
		modified: mf.modified,
		manifest: mf.manifest,
		kv:       map[string]any{},
		params:   map[string]any{},
	}
	if mf.Config.Digest != "" {
		data, err := st.readBlob(mf.Config.Digest)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &m.config); err != nil {
			return nil, err
		}
	}
	for _, l := range mf.Layers {
		switch l.MediaType {
		case "application/vnd.ollama.image.model":
			p, err := st.blobPath(l.Digest)
			if err != nil {
				return nil, err
			}
			m.modelPath = p
			if kv, err := readGGUF(p); err == nil {
				m.kv = kv
			}
		case "application/vnd.ollama.image.template":
			if data, err := st.readBlob(l.Digest); err == nil {
				m.template = string(data)
			}
		case "application/vnd.ollama.image.system":
			if data, err := st.readBlob(l.Digest); err == nil {
				m.system = string(data)
			}
		case "application/vnd.ollama.image.license":
			if data, err := st.readBlob(l.Digest); err == nil {
				m.license = append(m.license, string(data))
			}
		case "application/vnd.ollama.image.params":
			if data, err := st.readBlob(l.Digest); err == nil {
				_ = json.Unmarshal(data, &m.params)
			}
		}
	}
	return m, nil
}

// arch is the GGUF architecture, the prefix of most metadata keys.
func (m *localModel) arch() string {
	a, _ := m.kv["general.architecture"].(string)
	return a
}

// capabilities follows Ollama's Model.Capabilities: a pooling type marks an
// embedding model, anything else completes; the template adds tools and
// insert.
func (m *localModel) capabilities() []string {
	caps := []string{}
	switch {
	case m.modelPath != "":
		if _, ok := m.kv[m.arch()+".pooling_type"]; ok {
			caps = append(caps, "embedding")
		} else {
			caps = append(caps, "completion")
		}
	case len(m.config.Capabilities) > 0:
		caps = append(caps, m.config.Capabilities...)
	}
	tmpl := m.templateText()
	if strings.Contains(tmpl, ".Tools") {
		caps = append(caps, "tools")
	}
	if strings.Contains(tmpl, ".Suffix") {
		caps = append(caps, "insert")
	}
	return caps
}

// templateText is the model's template, or Ollama's default.
func (m *localModel) templateText() string {
	if m.template == "" {
		return "{{ .Prompt }}"
	}
	return m.template
}

func (m *localModel) details() ModelDetails {
	return ModelDetails{
		Format:            m.config.ModelFormat,
		Family:            m.config.ModelFamily,
		Families:          m.config.ModelFamilies,
		ParameterSize:     m.config.ModelType,
		QuantizationLevel: m.config.FileType,
	}
}

// trainedContext is the model's maximum context length, 0 when unknown.
func (m *localModel) trainedContext() int {
	if v, ok := ggufUint(m.kv, m.arch()+".context_length"); ok {
		return int(v)
	}
	return m.config.ContextLen
}

// embeddingLength is the width of the model's embeddings.
func (m *localModel) embeddingLength() int {
	if v, ok := ggufUint(m.kv, m.arch()+".embedding_length"); ok && v > 0 {
		return int(v)
	}
	if m.config.EmbedLen > 0 {
		return m.config.EmbedLen
	}
	return 768
}

// readGGUF reads the metadata of a GGUF file without reading its tensors.
func readGGUF(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return decodeGGUF(f)
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// pruneDirs removes empty directories below root (root itself stays).
func pruneDirs(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(root, e.Name())
		pruneDirs(p)
		if rest, err := os.ReadDir(p); err == nil && len(rest) == 0 {
			_ = os.Remove(p)
		}
	}
}
