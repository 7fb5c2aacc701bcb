package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"corral/gpu"
)

// Set at build time by scripts/build, as version is (main.go):
// -ldflags "-X main.commit=... -X main.buildDate=...". A plain go build
// leaves them empty and the version command falls back to what the Go
// toolchain stamped (vcs.revision, vcs.time).
var (
	commit    string
	buildDate string
)

// buildInfo is what corral version prints.
type buildInfo struct {
	Version   string
	Commit    string // empty: unknown
	Modified  bool   // built from a tree with uncommitted changes
	BuildDate string // RFC 3339; empty: unknown
	GoVersion string
	Platform  string // GOOS/GOARCH
	NVML      bool
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, BuildDate: buildDate, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, NVML: gpu.NVML}
	if b.Commit != "" {
		return b
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			case "vcs.time":
				if b.BuildDate == "" {
					b.BuildDate = s.Value + " (commit time)"
				}
			}
		}
	}
	return b
}

func (b buildInfo) print(w io.Writer) {
	commit, date := b.Commit, b.BuildDate
	if commit == "" {
		commit = "unknown"
	}
	if b.Modified {
		commit += " (with uncommitted changes)"
	}
	if date == "" {
		date = "unknown"
	}
	nvml := "yes: built with cgo, GPUs are found through the NVIDIA driver"
	if !b.NVML {
		nvml = "no: built with CGO_ENABLED=0, Ollama runs on CPU only"
	}
	fmt.Fprintf(w, "corral %s\ncommit  %s\nbuilt   %s\ngo      %s %s\nnvml    %s\n", b.Version, commit, date, b.GoVersion, b.Platform, nvml)
}

func (a *app) versionCmd(_ context.Context, args []string) error {
	fs := newFlagSet("version", a.stdout)
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	currentBuild().print(a.stdout)
	return nil
}
