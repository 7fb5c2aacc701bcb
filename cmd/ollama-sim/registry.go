package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
)

// The built-in fake registry: which names /api/pull can fetch and what they
// look like. Sizes, families and quantizations follow the real
// ollama.com/library entries; blobs on disk are small, the sizes recorded in
// the manifests are the real ones.

// catalogEntry describes one pullable model.
type catalogEntry struct {
	name       string   // canonical name:tag
	aliases    []string // other tags with the same content
	family     string
	paramSize  string // parameter_size shown in details
	paramCount uint64
	fileType   uint64 // general.file_type
	size       int64  // total of all layers, as the registry reports it
	contextLen uint32
	embedLen   uint32
	blocks     uint32
	embedding  bool // embedding-only (no completion)
	template   string
	params     map[string]any
	license    string
}

const (
	llama3Template = `<|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
{{ if .System }}{{ .System }}{{ end }}
{{- if .Tools }}You have access to the following functions: {{ range .Tools }}{{ . }}{{ end }}{{ end }}<|eot_id|>
{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

`
	qwenTemplate = `{{- if .Messages }}
{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}

# Tools

<tools>
{{- range .Tools }}
{"type": "function", "function": {{ .Function }}}
{{- end }}
</tools>
{{- end }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ else }}
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ end }}{{ .Response }}{{ if .Response }}<|im_end|>{{ end }}`
	mistralTemplate = `{{- if .Messages }}
{{- range $index, $_ := .Messages }}
{{- if eq .Role "user" }}
{{- if and (eq (len (slice $.Messages $index)) 1) $.Tools }}[AVAILABLE_TOOLS] {{ $.Tools }}[/AVAILABLE_TOOLS]
{{- end }}[INST] {{ if and $.System (eq (len (slice $.Messages $index)) 1) }}{{ $.System }}

{{ end }}{{ .Content }}[/INST]
{{- else if eq .Role "assistant" }} {{ .Content }}</s>
{{- end }}
{{- end }}
{{- else }}[INST] {{ if .System }}{{ .System }}

{{ end }}{{ .Prompt }}[/INST]
{{- end }} {{ .Response }}
{{- if .Response }}</s>
{{- end }}`
	zephyrTemplate = `<|system|>
{{ .System }}</s>
<|user|>
{{ .Prompt }}</s>
<|assistant|>
`
)

// catalog returns the built-in registry. It is rebuilt on each call so that
// no package-level state exists.
func catalog() []catalogEntry {
	llamaStop := map[string]any{"stop": []string{"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}}
	return []catalogEntry{
		{
			name: "llama3.2:1b", family: "llama", paramSize: "1.2B", paramCount: 1235814432,
			fileType: 7, size: 1321098329, contextLen: 131072, embedLen: 2048, blocks: 16,
			template: llama3Template, params: llamaStop, license: "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT (simulated)",
		},
		{
			name: "llama3.2:3b", aliases: []string{"llama3.2:latest"}, family: "llama", paramSize: "3.2B", paramCount: 3212749888,
			fileType: 15, size: 2019393189, contextLen: 131072, embedLen: 3072, blocks: 28,
			template: llama3Template, params: llamaStop, license: "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT (simulated)",
		},
		{
			name: "llama3.1:8b", aliases: []string{"llama3.1:latest"}, family: "llama", paramSize: "8.0B", paramCount: 8030261312,
			fileType: 15, size: 4920753328, contextLen: 131072, embedLen: 4096, blocks: 32,
			template: llama3Template, params: llamaStop, license: "LLAMA 3.1 COMMUNITY LICENSE AGREEMENT (simulated)",
		},
		{
			name: "llama3.1:70b", family: "llama", paramSize: "70.6B", paramCount: 70553706560,
			fileType: 15, size: 42520413916, contextLen: 131072, embedLen: 8192, blocks: 80,
			template: llama3Template, params: llamaStop, license: "LLAMA 3.1 COMMUNITY LICENSE AGREEMENT (simulated)",
		},
		{
			name: "qwen2.5:0.5b", family: "qwen2", paramSize: "494.03M", paramCount: 494032768,
			fileType: 15, size: 397821319, contextLen: 32768, embedLen: 896, blocks: 24,
			template: qwenTemplate, license: "Apache License Version 2.0 (simulated)",
		},
		{
			name: "qwen2.5:7b", aliases: []string{"qwen2.5:latest"}, family: "qwen2", paramSize: "7.6B", paramCount: 7615616512,
			fileType: 15, size: 4683087332, contextLen: 32768, embedLen: 3584, blocks: 28,
			template: qwenTemplate, license: "Apache License Version 2.0 (simulated)",
		},
		{
			name: "mistral:7b", aliases: []string{"mistral:latest"}, family: "llama", paramSize: "7.2B", paramCount: 7248023552,
			fileType: 2, size: 4113301824, contextLen: 32768, embedLen: 4096, blocks: 32,
			template: mistralTemplate, params: map[string]any{"stop": []string{"[INST]", "[/INST]"}},
			license: "Apache License Version 2.0 (simulated)",
		},
		{
			name: "nomic-embed-text:v1.5", aliases: []string{"nomic-embed-text:latest"}, family: "nomic-bert", paramSize: "137M", paramCount: 137000000,
			fileType: 1, size: 274302450, contextLen: 2048, embedLen: 768, blocks: 12, embedding: true,
			params: map[string]any{"num_ctx": 8192}, license: "Apache License Version 2.0 (simulated)",
		},
		{
			name: "tinyllama:1.1b", aliases: []string{"tinyllama:latest"}, family: "llama", paramSize: "1.1B", paramCount: 1100048384,
			fileType: 2, size: 637700138, contextLen: 2048, embedLen: 2048, blocks: 22,
			template: zephyrTemplate, params: map[string]any{"stop": []string{"<|system|>", "<|user|>", "<|assistant|>", "</s>"}},
			license: "Apache License Version 2.0 (simulated)",
		},
	}
}

// lookupCatalog finds the entry a library name refers to; other hosts and
// namespaces are not in the catalogue.
func lookupCatalog(n name) (catalogEntry, bool) {
	if !strings.EqualFold(n.host, defaultHost) || !strings.EqualFold(n.namespace, defaultNamespace) {
		return catalogEntry{}, false
	}
	ref := n.model + ":" + n.tag
	for _, e := range catalog() {
		if strings.EqualFold(e.name, ref) {
			return e, true
		}
		for _, a := range e.aliases {
			if strings.EqualFold(a, ref) {
				return e, true
			}
		}
	}
	return catalogEntry{}, false
}

// image is what a pull fetches: the manifest and the content of each blob.
type image struct {
	manifest manifest
	blobs    map[string][]byte // by digest
}

// image builds the entry's manifest and blobs. Everything is derived from
// the entry, so digests are the same on every run and every instance.
func (e catalogEntry) image() image {
	img := image{blobs: map[string][]byte{}}
	add := func(mediaType string, data []byte) layer {
		l := layer{MediaType: mediaType, Digest: digestOf(data), Size: int64(len(data))}
		img.blobs[l.Digest] = data
		return l
	}

	arch := e.family
	kvs := []ggufKV{
		{"general.architecture", arch},
		{"general.name", e.name},
		{"general.file_type", uint32(e.fileType)},
		{"general.parameter_count", e.paramCount},
		{"general.quantization_version", uint32(2)},
		{arch + ".block_count", e.blocks},
		{arch + ".context_length", e.contextLen},
		{arch + ".embedding_length", e.embedLen},
		{"tokenizer.ggml.model", "gpt2"},
	}
	if e.embedding {
		kvs = append(kvs, ggufKV{arch + ".pooling_type", uint32(1)})
	}
	modelLayer := add("application/vnd.ollama.image.model", encodeGGUF(kvs))

	var others []layer
	if e.template != "" {
		others = append(others, add("application/vnd.ollama.image.template", []byte(e.template)))
	}
	if e.license != "" {
		others = append(others, add("application/vnd.ollama.image.license", []byte(e.license)))
	}
	if len(e.params) > 0 {
		b, err := json.Marshal(e.params)
		if err != nil {
			panic(fmt.Sprintf("registry: params of %s: %v", e.name, err))
		}
		others = append(others, add("application/vnd.ollama.image.params", b))
	}

	layers := append([]layer{modelLayer}, others...)
	cfg := configV2{
		ModelFormat:   "gguf",
		ModelFamily:   e.family,
		ModelFamilies: []string{e.family},
		ModelType:     e.paramSize,
		FileType:      fileTypeName(e.fileType),
		Architecture:  "amd64",
		OS:            "linux",
		RootFS:        rootFS{Type: "layers"},
	}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.Digest)
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		panic(fmt.Sprintf("registry: config of %s: %v", e.name, err))
	}
	cfgLayer := add("application/vnd.docker.container.image.v1+json", cfgBytes)

	// The model layer carries the simulated size, so that the manifest
	// adds up to what the registry reports for the model.
	small := cfgLayer.Size
	for _, l := range others {
		small += l.Size
	}
	layers[0].Size = max(e.size-small, modelLayer.Size)

	img.manifest = manifest{
		SchemaVersion: 2,
		MediaType:     "application/vnd.docker.distribution.manifest.v2+json",
		Config:        cfgLayer,
		Layers:        layers,
	}
	return img
}

func digestOf(data []byte) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(data))
}
