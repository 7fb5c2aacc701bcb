package main

import (
	"strings"
	"testing"
)

func TestLoadConfigRole(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantRole role
		wantFrom string
		wantAddr string
	}{
		{"default", nil, nil, roleOpenWebUI, "default", ":8080"},
		{"argument", nil, []string{"lobechat"}, roleLobeChat, "argument", ":3210"},
		{"argument beats SIM_ROLE", []string{"SIM_ROLE=minio"}, []string{"postgres"}, rolePostgres, "argument", ":5432"},
		{"SIM_ROLE", []string{"SIM_ROLE=minio"}, nil, roleMinIO, "SIM_ROLE", ":9000"},
		{"real command ignored", []string{"SIM_ROLE=minio"}, []string{"server", "/data"}, roleMinIO, "SIM_ROLE", ":9000"},
		{"postgres hint", []string{"POSTGRES_PASSWORD=pw"}, []string{"postgres", "-c", "fsync=off"}, rolePostgres, "argument", ":5432"},
		{"postgres env hint", []string{"POSTGRES_PASSWORD=pw", "OPENAI_API_KEY=k"}, nil, rolePostgres, "POSTGRES_PASSWORD", ":5432"},
		{"minio hint", []string{"MINIO_ROOT_USER=u"}, []string{"server", "/data"}, roleMinIO, "MINIO_ROOT_USER", ":9000"},
		{"lobechat hint", []string{"OPENAI_PROXY_URL=http://gw/v1", "OPENAI_API_KEY=k"}, nil, roleLobeChat, "OPENAI_PROXY_URL", ":3210"},
		{"lobechat db hint", []string{"KEY_VAULTS_SECRET=s", "DATABASE_URL=postgres://x"}, nil, roleLobeChat, "KEY_VAULTS_SECRET", ":3210"},
		{"open-webui hint", []string{"OPENAI_API_BASE_URL=http://gw/v1"}, nil, roleOpenWebUI, "OPENAI_API_BASE_URL", ":8080"},
		{"PORT", []string{"PORT=3000", "SIM_ROLE=lobechat"}, nil, roleLobeChat, "SIM_ROLE", ":3000"},
		{"empty PORT", []string{"PORT="}, nil, roleOpenWebUI, "default", ":8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(tt.env, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Role != tt.wantRole || cfg.RoleFrom != tt.wantFrom || cfg.Addr != tt.wantAddr {
				t.Errorf("role %s from %s on %s, want %s from %s on %s",
					cfg.Role, cfg.RoleFrom, cfg.Addr, tt.wantRole, tt.wantFrom, tt.wantAddr)
			}
		})
	}
}

func TestLoadConfigWeb(t *testing.T) {
	tests := []struct {
		name                    string
		env                     []string
		wantBase, wantKey, want string // want: the data directory
	}{
		{"open-webui", []string{"OPENAI_API_BASE_URL=http://gw:8000/v1/", "OPENAI_API_KEY=sk-1"},
			"http://gw:8000/v1", "sk-1", "/app/backend/data"},
		{"open-webui lists", []string{"OPENAI_API_BASE_URLS=http://a/v1;http://b/v1", "OPENAI_API_KEYS=ka;kb"},
			"http://a/v1", "ka", "/app/backend/data"},
		{"open-webui data dir", []string{"SIM_DATA_DIR=/tmp/x"}, "", "", "/tmp/x"},
		{"open-webui no data dir", []string{"SIM_DATA_DIR="}, "", "", ""},
		{"lobechat", []string{"SIM_ROLE=lobechat", "OPENAI_PROXY_URL=https://gw/v1", "OPENAI_API_KEY=sk-2", "OPENAI_API_BASE_URL=http://ignored"},
			"https://gw/v1", "sk-2", ""},
		{"lobechat data dir", []string{"SIM_ROLE=lobechat", "SIM_DATA_DIR=/d"}, "", "", "/d"},
		{"minio has none", []string{"SIM_ROLE=minio", "SIM_DATA_DIR=/d", "OPENAI_API_BASE_URL=http://gw"}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(tt.env, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.UpstreamBase != tt.wantBase || cfg.UpstreamKey != tt.wantKey || cfg.DataDir != tt.want {
				t.Errorf("base %q key %q data %q, want %q %q %q",
					cfg.UpstreamBase, cfg.UpstreamKey, cfg.DataDir, tt.wantBase, tt.wantKey, tt.want)
			}
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				if cfg.Env[k] != v {
					t.Errorf("Env[%s] = %q, want %q", k, cfg.Env[k], v)
				}
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"unknown SIM_ROLE", []string{"SIM_ROLE=ollama"}, `SIM_ROLE "ollama"`},
		{"bad PORT", []string{"PORT=http"}, `PORT "http"`},
		{"PORT out of range", []string{"PORT=70000"}, `PORT "70000"`},
		{"base without scheme", []string{"OPENAI_API_BASE_URL=gw:8000/v1"}, "OPENAI_API_BASE_URL"},
		{"lobechat base without scheme", []string{"SIM_ROLE=lobechat", "OPENAI_PROXY_URL=gw"}, "OPENAI_PROXY_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.env, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %s", err, tt.want)
			}
		})
	}
}
