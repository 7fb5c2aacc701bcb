package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"corral/engine/enginetest"
)

// The quick start in README.md, run as written: the shell blocks between
// <!-- quickstart:NAME --> and <!-- /quickstart:NAME --> go to bash in a
// fresh copy of the repository, so the README and these tests cannot
// drift. The only changes are the ones a shared test machine needs, each
// of which must find its text: a namespace of the test's own, and a free
// port in place of 8080 (the admin and chat listeners off).

// readmeBlocks returns the sh blocks of README.md between the markers of
// one route, joined, and the text in between (the prose a user reads).
func readmeBlocks(t testing.TB, route string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "<!-- quickstart:"+route+" -->", "<!-- /quickstart:"+route+" -->"
	_, rest, ok := strings.Cut(string(readme), begin)
	if !ok {
		t.Fatalf("README.md has no %s marker", begin)
	}
	section, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("README.md has no %s marker", end)
	}
	var script strings.Builder
	in := false
	for line := range strings.Lines(section) {
		switch trimmed := strings.TrimSpace(line); {
		case !in && trimmed == "```sh":
			in = true
		case in && trimmed == "```":
			in = false
		case in:
			script.WriteString(line)
		}
	}
	if in {
		t.Fatalf("README.md quick start %q: a ```sh block is not closed", route)
	}
	if script.Len() == 0 {
		t.Fatalf("README.md quick start %q has no ```sh block", route)
	}
	return script.String()
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// cleanCopy copies what a clone of the repository would hold (the files
// git tracks, and new ones it does not ignore) into a new directory: no
// build outputs, no data dir, nothing a developer left behind.
func cleanCopy(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	list, err := enginetest.Output(context.Background(), root, nil, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		t.Fatalf("list the repository's files: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "corral")
	for _, name := range strings.Split(strings.TrimRight(list, "\x00"), "\x00") {
		if err := copyFile(filepath.Join(root, name), filepath.Join(dst, name)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // tracked, deleted in the work tree
			}
			t.Fatal(err)
		}
	}
	return dst
}

func copyFile(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		return os.Symlink(target, dst)
	}
	if !fi.Mode().IsRegular() {
		return nil // a submodule's directory
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return os.WriteFile(dst, data, fi.Mode().Perm())
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// quickStart is one run of a README route.
type quickStart struct {
	dir    string // the clean copy, where the commands run
	ns     string // the namespace in place of the README's
	output string // stdout and stderr together
	// Since the script started: the first streamed chunk, and [DONE].
	firstChunk, done time.Duration
	chunks           int // data: lines with a JSON object
}

// runQuickStart runs a route's commands with bash in a clean copy of the
// repository and reads what they print as it comes.
func runQuickStart(t *testing.T, route string, timeout time.Duration, edit func(script string) string) *quickStart {
	t.Helper()
	if _, err := enginetest.Output(context.Background(), "", nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		t.Skipf("docker daemon not answering: %v", err)
	}
	script := readmeBlocks(t, route)
	ns := enginetest.Namespace(t)
	addr := freeAddr(t)
	script = replaceAll(t, script, "--namespace corral-"+route, "--namespace "+ns)
	script = replaceAll(t, script, "http://localhost:8080", "http://"+addr)
	if edit != nil {
		script = edit(script)
	}
	t.Logf("README quick start %q, as run here:\n%s", route, script)

	q := &quickStart{dir: cleanCopy(t), ns: ns}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = q.dir
	cmd.Env = append(os.Environ(), "CORRAL_ADDR="+addr, "CORRAL_ADMIN_ADDR=", "CORRAL_CHAT_ADDR=")
	// The whole group: corral serve runs in the background of the script.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, nothing of the script outlives the test; the
	// namespace's containers go in enginetest's cleanup, after this one.
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		switch {
		case strings.HasPrefix(line, "data: {"):
			if q.chunks == 0 {
				q.firstChunk = time.Since(start)
			}
			q.chunks++
		case line == "data: [DONE]":
			q.done = time.Since(start)
		}
	}
	err = cmd.Wait()
	out.WriteString(stderr.String())
	q.output = out.String()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(q.dir, "corral-"+route+".log"))
		t.Fatalf("the quick start's commands failed after %s: %v\n%s\ncorral's log:\n%s", time.Since(start).Round(time.Second), err, q.output, log)
	}
	return q
}

// replaceAll replaces old in script, which must hold it: a README that no
// longer says old would otherwise run unchanged on the shared machine.
func replaceAll(t testing.TB, script, old, new string) string {
	t.Helper()
	if !strings.Contains(script, old) {
		t.Fatalf("README.md's quick start no longer says %q; update this test with it", old)
	}
	return strings.ReplaceAll(script, old, new)
}

// lockedBuffer is a bytes.Buffer that exec's copying goroutine and the
// test may use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestQuickStartSimulator runs README.md's offline quick start from a
// clean copy of the repository: the simulator's image, corral built and
// serving it, a key, and a streamed reply with curl, then corral stopped
// and its containers removed. No registry, no GPU, no download.
func TestQuickStartSimulator(t *testing.T) {
	q := runQuickStart(t, "sim", 5*time.Minute, nil)
	if q.chunks == 0 || q.done == 0 {
		t.Fatalf("no streamed reply (%d chunks, [DONE] %v):\n%s", q.chunks, q.done > 0, q.output)
	}
	// The paced simulator: a word every 50 ms, so a stream, not one burst.
	if q.done-q.firstChunk < time.Second {
		t.Errorf("the reply came in %s from first chunk to [DONE]: not paced like a model", q.done-q.firstChunk)
	}
	t.Logf("clean copy to first streamed chunk: %s (reply done at %s, %d chunks)",
		q.firstChunk.Round(100*time.Millisecond), q.done.Round(100*time.Millisecond), q.chunks)
	assertDown(t, q)
}

// TestQuickStartRealOllama runs README.md's second route on the real
// Ollama server: the tiny generated model, imported with a num_predict,
// streams a reply that ends by itself. The image is built by CI's first
// step (.ci/run runs scripts/ollama-image, minutes cold), so here the
// README's line that builds it must be there and its image must exist.
func TestQuickStartRealOllama(t *testing.T) {
	image := realOllama(t)
	q := runQuickStart(t, "tiny", 5*time.Minute, func(script string) string {
		script = replaceAll(t, script, "scripts/ollama-image ", ": scripts/ollama-image ")
		return replaceAll(t, script, "--ollama-image corral-ollama:0.17.4", "--ollama-image "+image)
	})
	if q.chunks == 0 || q.done == 0 {
		t.Fatalf("no streamed reply that ends (%d chunks, [DONE] %v):\n%s", q.chunks, q.done > 0, q.output)
	}
	// num_predict=64 bounds the reply: the model never says its end token.
	if q.chunks > 64+2 {
		t.Errorf("%d chunks: num_predict did not bound the reply", q.chunks)
	}
	if !strings.Contains(q.output, `"finish_reason":"length"`) {
		t.Errorf("the reply did not end at num_predict:\n%s", q.output)
	}
	t.Logf("clean copy to first streamed chunk: %s (reply done at %s, %d chunks)",
		q.firstChunk.Round(100*time.Millisecond), q.done.Round(100*time.Millisecond), q.chunks)
	assertDown(t, q)
}

// assertDown checks that the route's last steps, corral stopped and
// corral down, left nothing of the namespace on Docker.
func assertDown(t *testing.T, q *quickStart) {
	t.Helper()
	for _, kind := range [][]string{{"ps", "-aq"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
		left := enginetest.Docker(t, append(kind, "--filter", "label=corral.namespace="+q.ns)...)
		if left != "" {
			t.Errorf("docker %s: corral down left %s\n%s", kind[0], strings.Fields(left), q.output)
		}
	}
}
