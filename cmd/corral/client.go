package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// errNotRunning: no corral answers on the control socket.
var errNotRunning = errors.New("corral is not running")

// daemon is the CLI's client of the running corral, over the control socket.
type daemon struct {
	sock string
	http *http.Client
}

func newDaemon(dataDir string) *daemon {
	sock := socketPath(dataDir)
	return &daemon{
		sock: sock,
		http: &http.Client{
			Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}},
		},
	}
}

// getJSON fetches path from the daemon into v.
func (d *daemon) getJSON(ctx context.Context, path string, v any) error {
	return d.do(ctx, http.MethodGet, path, nil, v)
}

// postJSON sends in as JSON to path and reads the answer into v.
func (d *daemon) postJSON(ctx context.Context, path string, in, v any) error {
	return d.do(ctx, http.MethodPost, path, in, v)
}

// deleteJSON deletes path and reads the answer into v.
func (d *daemon) deleteJSON(ctx context.Context, path string, v any) error {
	return d.do(ctx, http.MethodDelete, path, nil, v)
}

// do sends one request to the daemon, with in as its JSON body unless in
// is nil, and reads a 2xx answer into v. Any other answer becomes an error
// with the daemon's own message.
func (d *daemon) do(ctx context.Context, method, path string, in, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	resp, err := d.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return json.Unmarshal(body, v)
}

// events sends one request and hands each SSE data payload to fn until the
// stream ends, fn fails or ctx ends. Streams can last as long as a pull.
func (d *daemon) events(ctx context.Context, method, path string, in any, fn func(data []byte) error) error {
	resp, err := d.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: ")); ok {
			if err := fn(data); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

// send makes the request and turns "not running" and non-2xx answers into
// errors that say what to do. in is sent as JSON, or as it is when it is
// an io.Reader (a file upload).
func (d *daemon) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var reqBody io.Reader
	contentType := "application/json"
	if r, ok := in.(io.Reader); ok {
		reqBody, contentType = r, "application/octet-stream"
	} else if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		reqBody = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://corral"+path, reqBody)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return nil, fmt.Errorf("%w (no answer on %s): start it with corral serve, or pass the same --data-dir", errNotRunning, d.sock)
		}
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("%s: %s", path, resp.Status)
	}
	return resp, nil
}
