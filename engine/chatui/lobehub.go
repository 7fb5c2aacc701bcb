package chatui

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strconv"

	"corral/engine"
)

// lobeChatDB is LobeChat with its server database (the lobehub/lobehub
// image): PostgreSQL and an S3 store as companions, each healthy before
// the app starts, all secrets generated once.
//
// Browsers upload files straight to S3_ENDPOINT with URLs LobeHub signs
// for it. With a domain that is the domain itself: the front door serves
// the bucket's path there from the store, passing the host on so the
// signatures hold, and the app reaches the domain through the host
// (host-gateway), not by a round trip through the public address.
// Without one the store's private address is all there is, and uploads
// from browsers fail.
func lobeChatDB(c Config, image, v1 string) []engine.Spec {
	dbName, s3Name := Name(c.Namespace)+"-db", Name(c.Namespace)+"-s3"
	dbImage, s3Image := DBImage, S3Image
	if c.DBImage != "" {
		dbImage = c.DBImage
	}
	if c.S3Image != "" {
		s3Image = c.S3Image
	}
	sec := c.Secrets
	db := engine.Spec{
		Name: dbName, Role: "chatui-db", Image: dbImage, GPUIndex: -1,
		Cmd:  []string{"postgres", "-c", "shared_preload_libraries=pg_search"},
		Env:  map[string]string{"POSTGRES_PASSWORD": sec.DBPassword, "POSTGRES_DB": "lobechat"},
		Port: 5432, Health: "tcp", Volume: dbName, Mount: "/var/lib/postgresql/data",
	}
	s3 := engine.Spec{
		Name: s3Name, Role: "chatui-s3", Image: s3Image, GPUIndex: -1,
		Cmd:  []string{"--access-key", sec.S3Access, "--secret-key", sec.S3Secret, "/data"},
		Env:  map[string]string{"RUSTFS_ACCESS_KEY": sec.S3Access, "RUSTFS_SECRET_KEY": sec.S3Secret},
		Port: 9000, Health: "/health", Volume: s3Name, Mount: "/data",
	}
	env := map[string]string{
		"DATABASE_URL":         fmt.Sprintf("postgresql://postgres:%s@%s/lobechat", sec.DBPassword, net.JoinHostPort(dbName, "5432")),
		"KEY_VAULTS_SECRET":    sec.KeyVaults,
		"AUTH_SECRET":          sec.AuthSecret,
		"JWKS_KEY":             sec.JWKS,
		"INTERNAL_APP_URL":     "http://localhost:3210",
		"S3_ENDPOINT":          "http://" + net.JoinHostPort(s3Name, strconv.Itoa(s3.Port)),
		"S3_BUCKET":            Bucket,
		"S3_ACCESS_KEY_ID":     sec.S3Access,
		"S3_SECRET_ACCESS_KEY": sec.S3Secret,
		"S3_ENABLE_PATH_STYLE": "1",
		"S3_SET_ACL":           "0",
		// Images reach the model inline, not by a link into the store.
		"LLM_VISION_IMAGE_USE_BASE64": "1",
		"OPENAI_PROXY_URL":            v1,
		"OPENAI_API_KEY":              c.Key,
		"ENABLED_OLLAMA":              "0",
	}
	modelList(env, c.Models)
	app := engine.Spec{
		Name: Name(c.Namespace), Role: "chatui", Image: image, GPUIndex: -1,
		Port: 3210, Health: "/api/auth/ok", After: []string{dbName, s3Name},
	}
	if u, err := url.Parse(c.PublicURL); err == nil && c.PublicURL != "" {
		env["APP_URL"] = c.PublicURL
		env["S3_ENDPOINT"] = c.PublicURL
		app.Hosts = []string{u.Hostname() + ":host-gateway"}
	}
	app.Env = withExtra(env, c.Env)
	return []engine.Spec{db, s3, app}
}

// modelList offers LobeChat the gateway's models instead of its built-in
// list of OpenAI's.
func modelList(env map[string]string, models []string) {
	if len(models) == 0 {
		return
	}
	list := "-all"
	for _, m := range models {
		list += ",+" + m
	}
	env["OPENAI_MODEL_LIST"] = list
}

// withExtra adds the owner's own variables to env; theirs win.
func withExtra(env, extra map[string]string) map[string]string {
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// newJWKS makes the RS256 key set LobeHub signs its tokens with: a JSON
// Web Key Set holding one whole RSA private key.
func newJWKS() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("chat UI key set: %w", err)
	}
	k.Precompute()
	b64 := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.Bytes()) }
	kid := make([]byte, 8)
	rand.Read(kid)
	raw, err := json.Marshal(map[string][]map[string]string{"keys": {{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": hex.EncodeToString(kid),
		"n": b64(k.N), "e": b64(big.NewInt(int64(k.E))), "d": b64(k.D),
		"p": b64(k.Primes[0]), "q": b64(k.Primes[1]),
		"dp": b64(k.Precomputed.Dp), "dq": b64(k.Precomputed.Dq), "qi": b64(k.Precomputed.Qinv),
	}}})
	return string(raw), err
}
