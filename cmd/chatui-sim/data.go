package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Files in the data directory.
const (
	startsFile = "starts.log" // one line per start
	noteFile   = "note.txt"   // written by POST /data
)

// maxDataFile caps what GET /data reads of one file.
const maxDataFile = 64 << 10

// recordStart creates the data directory and appends a line to
// starts.log.
func (s *server) recordStart() error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	host, _ := os.Hostname()
	f, err := os.OpenFile(filepath.Join(s.cfg.DataDir, startsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s started %s on %s\n", time.Now().UTC().Format(time.RFC3339Nano), s.cfg.Role, host)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// dataListing is GET /data's answer: the regular files at the top of the
// data directory and their contents (each cut at maxDataFile bytes).
type dataListing struct {
	Dir   string            `json:"dir"`
	Files map[string]string `json:"files"`
}

func (s *server) handleDataGet(w http.ResponseWriter, r *http.Request) {
	if s.cfg.DataDir == "" {
		writeError(w, http.StatusNotFound, "no data directory (set SIM_DATA_DIR)")
		return
	}
	entries, err := os.ReadDir(s.cfg.DataDir)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := dataListing{Dir: s.cfg.DataDir, Files: map[string]string{}}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := readHead(filepath.Join(s.cfg.DataDir, e.Name()), maxDataFile)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		out.Files[e.Name()] = string(b)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleDataPost writes the body to note.txt, replacing it whole.
func (s *server) handleDataPost(w http.ResponseWriter, r *http.Request) {
	if s.cfg.DataDir == "" {
		writeError(w, http.StatusNotFound, "no data directory (set SIM_DATA_DIR)")
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if err := writeFileAtomic(filepath.Join(s.cfg.DataDir, noteFile), body); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"written": noteFile, "bytes": len(body)})
}

func readHead(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// writeFileAtomic writes through a temporary file and a rename, so a
// container stopped mid-write leaves the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return errors.Join(err, os.Remove(tmp.Name()))
	}
	return nil
}
