package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"corral/engine/store"
	"corral/gpu"
)

// Labels corral puts on everything it creates; adoption and clean-up go by
// them, never by name alone.
const (
	LabelManaged   = "corral.managed"
	LabelNamespace = "corral.namespace"
	LabelRole      = "corral.role"
	LabelGPU       = "corral.gpu"
	LabelInstance  = "corral.instance"
	LabelSpecHash  = "corral.spec-hash"

	roleOllama = "ollama"
	cpuGPU     = "cpu"
	ollamaPort = 11434
	modelsPath = "/root/.ollama"
)

// DefaultOllamaImage is what users get unless they say otherwise.
const DefaultOllamaImage = "ollama/ollama:latest"

// Settings are the operator's choices that shape the desired instances.
// They live in the store; flags given at start override what is stored.
type Settings struct {
	GPUs         string `json:"gpus"`          // "all", "none" or a list of indexes/UUIDs
	CPUInstances int    `json:"cpu_instances"` // instances to run when no GPU is selected
	OllamaImage  string `json:"ollama_image"`
	KeepAlive    string `json:"keep_alive,omitempty"`   // OLLAMA_KEEP_ALIVE, empty = Ollama's default
	NumParallel  int    `json:"num_parallel,omitempty"` // OLLAMA_NUM_PARALLEL, 0 = Ollama's default
}

// DefaultSettings serve a fresh server: every GPU, or one CPU instance.
func DefaultSettings() Settings {
	return Settings{GPUs: "all", CPUInstances: 1, OllamaImage: DefaultOllamaImage}
}

// fields maps each setting to its store key; one place so loading and
// saving cannot drift apart.
func (s *Settings) fields() map[string]any {
	return map[string]any{
		"gpus":          &s.GPUs,
		"cpu_instances": &s.CPUInstances,
		"ollama_image":  &s.OllamaImage,
		"keep_alive":    &s.KeepAlive,
		"num_parallel":  &s.NumParallel,
	}
}

// LoadSettings returns the stored settings over the defaults.
func LoadSettings(st *store.Store) (Settings, error) {
	s := DefaultSettings()
	for key, ptr := range s.fields() {
		if err := st.Setting(key, ptr); err != nil && !errors.Is(err, store.ErrNotFound) {
			return s, err
		}
	}
	return s, nil
}

// SaveSettings stores every setting in one transaction.
func SaveSettings(st *store.Store, s Settings) error {
	values := map[string]any{}
	for key, ptr := range s.fields() {
		values[key] = ptr
	}
	return st.PutSettings(values)
}

// Validate returns every problem at once, each one line that says what to do.
func (s Settings) Validate() error {
	var errs []string
	if strings.TrimSpace(s.OllamaImage) == "" {
		errs = append(errs, "--ollama-image is empty: give an image reference such as "+DefaultOllamaImage)
	}
	if s.CPUInstances < 0 {
		errs = append(errs, fmt.Sprintf("--cpu-instances %d: must be 0 or more", s.CPUInstances))
	}
	if s.NumParallel < 0 {
		errs = append(errs, fmt.Sprintf("--num-parallel %d: must be 0 (Ollama's default) or more", s.NumParallel))
	}
	if s.KeepAlive != "" {
		if _, err := parseKeepAlive(s.KeepAlive); err != nil {
			errs = append(errs, fmt.Sprintf("--keep-alive %q: use a duration such as 5m or 1h, a number of seconds, or -1 for forever", s.KeepAlive))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "\n"))
}

// parseKeepAlive accepts what Ollama accepts for OLLAMA_KEEP_ALIVE.
func parseKeepAlive(v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	n, err := strconv.Atoi(v)
	return time.Duration(n) * time.Second, err
}

// Spec is one desired Ollama instance, or a companion container (see
// isApp).
type Spec = store.Instance

// isApp reports whether s is a companion container (the chat UI and what
// it needs) rather than an Ollama instance: it serves no models, gets no
// GPU, and is replaced at once rather than rolled.
func isApp(s Spec) bool { return s.Role != "" && s.Role != roleOllama }

// roleOf is the value of the role label for s.
func roleOf(s Spec) string {
	if s.Role == "" {
		return roleOllama
	}
	return s.Role
}

// portOf is the port s serves on the private network.
func portOf(s Spec) int {
	if s.Port > 0 {
		return s.Port
	}
	return ollamaPort
}

// Plan turns settings and the GPUs present into desired instances: one per
// selected GPU, else CPUInstances without device requests. It fails with a
// one-line message when the selection names a GPU that is not there.
func Plan(namespace string, s Settings, inv gpu.Inventory) ([]Spec, error) {
	devices, err := gpu.Select(inv, s.GPUs)
	if err != nil {
		return nil, err
	}
	env := map[string]string{"OLLAMA_HOST": fmt.Sprintf("0.0.0.0:%d", ollamaPort)}
	if s.KeepAlive != "" {
		env["OLLAMA_KEEP_ALIVE"] = s.KeepAlive
	}
	if s.NumParallel > 0 {
		env["OLLAMA_NUM_PARALLEL"] = strconv.Itoa(s.NumParallel)
	}
	var specs []Spec
	if len(devices) > 0 {
		for i, d := range devices {
			specs = append(specs, Spec{Name: instanceName(namespace, i), Index: i, GPU: d.UUID, GPUIndex: d.Index, Image: s.OllamaImage, Env: env})
		}
		return specs, nil
	}
	for i := 0; i < s.CPUInstances; i++ {
		specs = append(specs, Spec{Name: instanceName(namespace, i), Index: i, GPU: cpuGPU, GPUIndex: -1, Image: s.OllamaImage, Env: env})
	}
	return specs, nil
}

func instanceName(namespace string, i int) string {
	return fmt.Sprintf("%s-ollama-%d", namespace, i)
}

// specHash identifies what a container was created from, so a restart of
// corral keeps containers whose spec is unchanged and replaces the others.
// Publishing on loopback is part of it, as it changes the container.
func specHash(s Spec, publish bool) string {
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	canon := struct {
		Name, GPU, Image string
		Env              []string
		Publish          bool
	}{s.Name, s.GPU, s.Image, nil, publish}
	for _, k := range keys {
		canon.Env = append(canon.Env, k+"="+s.Env[k])
	}
	var raw []byte
	if isApp(s) {
		// A separate form, so adding these fields changed no Ollama
		// instance's hash (that would replace every one on upgrade).
		raw, _ = json.Marshal(struct {
			Instance            any
			Role, Volume, Mount string
			Port                int
			Cmd, Hosts          []string
		}{canon, s.Role, s.Volume, s.Mount, s.Port, s.Cmd, s.Hosts})
	} else {
		raw, _ = json.Marshal(canon)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}
