package models

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// call POSTs (or DELETEs) a JSON body to an instance and returns the
// response for the caller to read; a non-2xx answer becomes an error with
// Ollama's own message.
func (m *Manager) call(ctx context.Context, method, url string, body any) (*http.Response, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, fmt.Errorf("%s", ollamaError(resp))
	}
	return resp, nil
}

// callDone is call for answers the caller does not need.
func (m *Manager) callDone(ctx context.Context, method, url string, body any) error {
	resp, err := m.call(ctx, method, url, body)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func ollamaError(resp *http.Response) string {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error
	}
	if s := strings.TrimSpace(string(raw)); s != "" {
		return resp.Status + ": " + s
	}
	return resp.Status
}

// load asks an instance to load model and keep it for keepAlive ("0"
// unloads): Ollama's empty-prompt generate.
func (m *Manager) load(ctx context.Context, url, model string, keepAlive any) error {
	return m.callDone(ctx, http.MethodPost, url+"/api/generate", map[string]any{"model": model, "keep_alive": keepAlive})
}

// tags reads an instance's model names, canonical.
func (m *Manager) tags(ctx context.Context, url string) (map[string]bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/tags", nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", ollamaError(resp))
	}
	var t struct {
		Models []struct {
			Name string `json:"name"`
		} `json:"models"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, x := range t.Models {
		out[Canonical(x.Name)] = true
	}
	return out, nil
}
