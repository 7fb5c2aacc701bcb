package models

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Import describes a model file to bring in without a registry: servers
// without internet, or models kept on shared storage.
type Import struct {
	Name       string         `json:"name"`
	FileName   string         `json:"file_name"` // as Ollama records it, e.g. "model.gguf"
	Template   string         `json:"template,omitempty"`
	System     string         `json:"system,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// ImportFile creates a model from a GGUF read from r through one healthy
// instance: the file is spooled and hashed, uploaded as a blob, then
// created; progress goes to the returned pull-like events, and every
// instance sees the model when it ends. The upload is spooled in
// Config.SpoolDir (the system temp dir when empty).
func (m *Manager) ImportFile(ctx context.Context, in Import, r io.Reader, progress func(Event)) error {
	in.Name = Canonical(in.Name)
	if in.Name == "" {
		return errors.New("--name is required: the model's name, such as tiny:latest")
	}
	if in.FileName == "" {
		in.FileName = "model.gguf"
	}
	in.FileName = filepath.Base(in.FileName)
	t := m.routes.Routes()
	ups := healthy(t)
	if len(ups) == 0 {
		return noInstance(t)
	}
	via := ups[0]
	progress(Event{Model: in.Name, Status: "receiving " + in.FileName})
	f, err := os.CreateTemp(m.cfg.SpoolDir, "import-*.gguf")
	if err != nil {
		return fmt.Errorf("spool the upload: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return fmt.Errorf("receive %s: %w", in.FileName, err)
	}
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil || string(magic[:]) != "GGUF" {
		return fmt.Errorf("%s is not a GGUF file (it does not start with GGUF; %d bytes received): convert it first, e.g. with llama.cpp's convert_hf_to_gguf.py", in.FileName, size)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	progress(Event{Model: in.Name, Status: "uploading to " + via.Name, Digest: digest, Total: size, Instance: via.Name})
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, via.URL+"/api/blobs/"+digest, f)
	if err != nil {
		return err
	}
	req.ContentLength = size
	resp, err := m.http.Do(req)
	if err != nil {
		return fmt.Errorf("upload to %s: %w", via.Name, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return fmt.Errorf("upload to %s: %s", via.Name, ollamaError(resp))
	}
	resp.Body.Close()
	progress(Event{Model: in.Name, Status: "uploaded", Digest: digest, Total: size, Completed: size, Instance: via.Name})

	body := map[string]any{"model": in.Name, "files": map[string]string{in.FileName: digest}, "stream": true}
	if in.Template != "" {
		body["template"] = in.Template
	}
	if in.System != "" {
		body["system"] = in.System
	}
	if len(in.Parameters) > 0 {
		body["parameters"] = in.Parameters
	}
	cresp, err := m.call(ctx, http.MethodPost, via.URL+"/api/create", body)
	if err != nil {
		return fmt.Errorf("create %s through %s: %w", in.Name, via.Name, err)
	}
	defer cresp.Body.Close()
	sc := bufio.NewScanner(cresp.Body)
	ok := false
	for sc.Scan() {
		var ev Event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if ev.Error != "" {
			return fmt.Errorf("create %s: %s", in.Name, ev.Error)
		}
		ok = ok || ev.Status == "success"
		ev.Model, ev.Instance = in.Name, via.Name
		if ev.Status != "success" {
			progress(ev)
		}
	}
	if !ok {
		return fmt.Errorf("create %s through %s ended without success", in.Name, via.Name)
	}
	progress(Event{Model: in.Name, Status: "verifying on every instance"})
	seen, err := m.waitListed(ctx, in.Name, true)
	if err != nil {
		return err
	}
	m.settle(ctx, in.Name, true)
	m.log.Info("model imported", "model", in.Name, "via", via.Name, "bytes", size)
	progress(Event{Model: in.Name, Status: "success", Instances: seen, Done: true})
	return nil
}

// ParseParams reads --param k=v pairs: numbers become numbers, a repeated
// key (such as stop) becomes a list, as Ollama's Modelfile PARAMETER does.
func ParseParams(pairs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: use key=value, such as temperature=0.7 or stop=</s>", p)
		}
		var val any = v
		var num json.Number
		if json.Unmarshal([]byte(v), &num) == nil {
			if f, err := num.Float64(); err == nil {
				val = f
			}
		}
		if k == "stop" { // always a list, as Ollama wants it
			prev, _ := out[k].([]any)
			out[k] = append(prev, v)
			continue
		}
		if prev, ok := out[k]; ok {
			list, isList := prev.([]any)
			if !isList {
				list = []any{prev}
			}
			out[k] = append(list, val)
			continue
		}
		out[k] = val
	}
	return out, nil
}
