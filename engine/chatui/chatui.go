// Package chatui turns the owner's choice of chat UI into the companion
// containers the engine runs: the image, port, health check, data volume
// and the environment that wires the app to corral's gateway (never to
// Ollama) with a key of its own, and the secrets it needs, generated once
// and kept in the store so that a restart or a recreated container finds
// the same sessions and data.
package chatui

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"corral/engine"
	"corral/engine/store"
)

// Modes, as --chat-ui names them.
const (
	OpenWebUI  = "open-webui"
	LobeChat   = "lobechat"
	LobeChatDB = "lobechat-db" // LobeChat with its server database and object store
	None       = "none"
)

// Images are what users get unless --chat-ui-image says otherwise.
var Images = map[string]string{
	OpenWebUI:  "ghcr.io/open-webui/open-webui:main",
	LobeChat:   "lobehub/lobe-chat:latest",
	LobeChatDB: "lobehub/lobehub:latest",
}

// The companions of lobechat-db: PostgreSQL with the pg_search extension
// LobeHub's migrations need (ParadeDB), and the S3 store its compose file
// runs (RustFS).
const (
	DBImage = "paradedb/paradedb:latest-pg17"
	S3Image = "rustfs/rustfs:latest"
)

// ParseMode validates a --chat-ui value.
func ParseMode(s string) (string, error) {
	switch s {
	case OpenWebUI, LobeChat, LobeChatDB, None:
		return s, nil
	}
	return "", fmt.Errorf("--chat-ui %q: use open-webui, lobechat, lobechat-db or none", s)
}

// Config is what the specs are built from.
type Config struct {
	Mode  string
	Image string // empty: the mode's default
	// DBImage and S3Image replace lobechat-db's companions' images.
	DBImage, S3Image string
	// Env is passed to the chat UI as is: single sign-on settings, say.
	Env map[string]string
	// Models are what LobeChat offers (it shows a built-in list of
	// OpenAI's otherwise); Open WebUI asks the gateway.
	Models    []string
	Namespace string
	// Gateway is the base URL of corral's internal gateway listener as the
	// containers reach it (no /v1), and Key the chat UI's own API key.
	Gateway, Key string
	// PublicURL is where users open the chat UI (https://chat.example.com
	// or http://HOST:3000), for links the app makes.
	PublicURL string
	Secrets   Secrets
}

// Name is the chat UI's container.
func Name(namespace string) string { return namespace + "-chatui" }

// Specs are the containers of the chosen mode: none for None.
func Specs(c Config) ([]engine.Spec, error) {
	image := c.Image
	if image == "" {
		image = Images[c.Mode]
	}
	v1 := strings.TrimRight(c.Gateway, "/") + "/v1"
	switch c.Mode {
	case None:
		return nil, nil
	case OpenWebUI:
		// Open WebUI keeps most settings in its own database after its
		// first start; these are read at every start (see docs/chat-ui.md).
		env := map[string]string{
			"OPENAI_API_BASE_URL": v1,
			"OPENAI_API_KEY":      c.Key,
			"ENABLE_OLLAMA_API":   "false",
			"WEBUI_SECRET_KEY":    c.Secrets.WebUISecret,
			// Usage per chat user: the gateway reads these on its internal
			// listener only.
			"ENABLE_FORWARD_USER_INFO_HEADERS": "true",
			// Document chat embeds through the gateway instead of a model
			// Open WebUI would download from the internet.
			"RAG_EMBEDDING_ENGINE":    "openai",
			"RAG_OPENAI_API_BASE_URL": v1,
			"RAG_OPENAI_API_KEY":      c.Key,
			"OFFLINE_MODE":            "true",
		}
		if c.PublicURL != "" {
			env["WEBUI_URL"] = c.PublicURL
		}
		return []engine.Spec{{
			Name: Name(c.Namespace), Role: "chatui", Image: image, Env: withExtra(env, c.Env), GPUIndex: -1,
			Port: 8080, Health: "/health", Volume: c.Namespace + "-chatui-data", Mount: "/app/backend/data",
		}}, nil
	case LobeChat:
		// LobeChat calls the provider from its server with these, so
		// browsers never talk to Ollama; its chats live in the browser.
		env := map[string]string{
			"OPENAI_PROXY_URL": v1,
			"OPENAI_API_KEY":   c.Key,
			"ACCESS_CODE":      c.Secrets.AccessCode,
			"ENABLED_OLLAMA":   "0",
		}
		modelList(env, c.Models)
		return []engine.Spec{{
			Name: Name(c.Namespace), Role: "chatui", Image: image, Env: withExtra(env, c.Env), GPUIndex: -1,
			Port: 3210, Health: "/",
		}}, nil
	case LobeChatDB:
		return lobeChatDB(c, image, v1), nil
	}
	return nil, fmt.Errorf("chat UI mode %q is not known", c.Mode)
}

// Secrets are generated once and kept in the store.
type Secrets struct {
	WebUISecret string `json:"webui_secret_key,omitempty"`
	AccessCode  string `json:"access_code,omitempty"`
	// Key is the chat UI's gateway key; only its hash is with the keys.
	Key string `json:"gateway_key,omitempty"`
	// lobechat-db's: the database's password, the object store's keys,
	// LobeHub's vault and auth secrets and its RS256 key set.
	DBPassword string `json:"db_password,omitempty"`
	S3Access   string `json:"s3_access_key,omitempty"`
	S3Secret   string `json:"s3_secret_key,omitempty"`
	KeyVaults  string `json:"key_vaults_secret,omitempty"`
	AuthSecret string `json:"auth_secret,omitempty"`
	JWKS       string `json:"jwks_key,omitempty"`
}

const secretsSetting = "chatui_secrets"

// LoadSecrets returns the stored secrets, generating and storing those
// missing.
func LoadSecrets(st *store.Store) (Secrets, error) {
	var s Secrets
	if err := st.Setting(secretsSetting, &s); err != nil && !errors.Is(err, store.ErrNotFound) {
		return s, fmt.Errorf("chat UI secrets: %w", err)
	}
	changed := false
	for _, f := range []*string{&s.WebUISecret, &s.AccessCode, &s.DBPassword, &s.S3Access, &s.S3Secret} {
		if *f == "" {
			*f = random(18)
			changed = true
		}
	}
	// LobeHub reads these two as base64 of 32 bytes (an AES-256 key).
	for _, f := range []*string{&s.KeyVaults, &s.AuthSecret} {
		if *f == "" {
			b := make([]byte, 32)
			rand.Read(b)
			*f = base64.StdEncoding.EncodeToString(b)
			changed = true
		}
	}
	if s.JWKS == "" {
		jwks, err := newJWKS()
		if err != nil {
			return s, err
		}
		s.JWKS, changed = jwks, true
	}
	if changed {
		if err := SaveSecrets(st, s); err != nil {
			return s, err
		}
	}
	return s, nil
}

// SaveSecrets stores s.
func SaveSecrets(st *store.Store, s Secrets) error {
	if err := st.PutSettings(map[string]any{secretsSetting: s}); err != nil {
		return fmt.Errorf("chat UI secrets: %w", err)
	}
	return nil
}

// random is n random bytes in URL-safe base64.
func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
