package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"corral/engine"
	"corral/engine/models"
)

func (a *app) modelsCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("models", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	var out struct {
		Models     []models.Model     `json:"models"`
		Placements []models.Placement `json:"placements"`
	}
	if err := newDaemon(*dataDir).getJSON(ctx, "/api/v1/models", &out); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tPARAMS\tQUANT\tON\tLOADED ON\tPLACEMENT")
	for _, m := range out.Models {
		var on, loaded []string
		for _, p := range m.Instances {
			on = append(on, p.Instance)
			if p.Loaded {
				loaded = append(loaded, fmt.Sprintf("%s (%s)", p.Instance, engine.IECBytes(p.SizeVRAM)))
			}
		}
		place := "-"
		if m.Placement != nil {
			place = m.Placement.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.Name, engine.IECBytes(m.Size), dash(m.ParameterSize), dash(m.Quantization), len(on), dash(strings.Join(loaded, ", ")), place)
	}
	return tw.Flush()
}

// pullLong is the rest of corral pull's help.
const pullLong = "Ctrl-C stops the pull in corral as well, not only the progress here: it asks\n" +
	"corral to cancel it, which ends it for whoever else watches it too. corral\n" +
	"pull --cancel MODEL does the same for a pull begun elsewhere.\n"

// pullCmd pulls a model once for every instance and shows its progress.
// Ctrl-C asks the daemon to cancel the pull, and waits a moment for it to
// say the pull ended; --cancel cancels a pull begun elsewhere.
func (a *app) pullCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("pull", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	quiet := fs.Bool("quiet", false, "print only the result")
	cancel := fs.Bool("cancel", false, "cancel the pull of MODEL under way instead, wherever it began (another corral pull, the admin pages); everyone watching it sees it end")
	model, err := oneArg(fs, args, "usage: corral pull MODEL (a name from ollama.com/library, such as llama3.2:1b), or corral pull --cancel MODEL")
	if err != nil {
		return helpOK(err)
	}
	if *cancel {
		name, err := cancelPull(ctx, *dataDir, model)
		if err != nil {
			return fmt.Errorf("pull --cancel %s: %w", model, err)
		}
		fmt.Fprintf(a.stdout, "cancelled the pull of %s\n", name)
		return nil
	}
	stop := func(ctx context.Context) error {
		_, err := cancelPull(ctx, *dataDir, model)
		return err
	}
	last, err := a.follow(ctx, *dataDir, "/api/v1/models/pull", map[string]string{"model": model}, *quiet, "pull "+model, stop)
	if err != nil && ctx.Err() != nil && last.Error == "" {
		return fmt.Errorf("pull %s: interrupted, and corral did not say the pull ended: corral pull --cancel %s stops it", model, model)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s is on %s\n", last.Model, strings.Join(last.Instances, ", "))
	return nil
}

// cancelPull asks the daemon to stop the pull of model; it returns the
// model's full name.
func cancelPull(ctx context.Context, dataDir, model string) (string, error) {
	var out struct {
		Cancelled string `json:"cancelled"`
	}
	if err := newDaemon(dataDir).postJSON(ctx, "/api/v1/models/pull/cancel", map[string]string{"model": model}, &out); err != nil {
		return "", err
	}
	return out.Cancelled, nil
}

// How long an interrupted pull waits: for the daemon to take the cancel,
// then for the stream to bring the pull's end.
const (
	cancelAskTimeout = 10 * time.Second
	cancelEndTimeout = 15 * time.Second
)

// follow posts body to a daemon endpoint that streams model events (a
// pull or an import), draws them, and returns the last one; a failure the
// daemon reports, or a stream that stops early, is an error.
//
// With stop set, the stream outlives ctx: when ctx ends (Ctrl-C) follow
// says so, calls stop to have the daemon end the work, and reads on until
// the daemon's last event, for at most cancelEndTimeout. Without it, the
// stream ends with ctx.
func (a *app) follow(ctx context.Context, dataDir, path string, body any, quiet bool, what string, stop func(context.Context) error) (models.Event, error) {
	bar := newProgress(a.stdout, quiet)
	var mu sync.Mutex // the drawing and the interruption's message
	streamCtx := ctx
	if stop != nil {
		var endStream context.CancelFunc
		streamCtx, endStream = context.WithCancel(context.WithoutCancel(ctx))
		defer endStream()
		done := make(chan struct{})
		var wg sync.WaitGroup
		defer wg.Wait()
		defer close(done) // before the Wait: the watcher below ends on it
		wg.Go(func() {
			select {
			case <-done:
				return
			case <-ctx.Done():
			}
			mu.Lock()
			bar.end()
			fmt.Fprintf(a.stderr, "interrupted: asking corral to cancel %s\n", what)
			mu.Unlock()
			askCtx, cancel := context.WithTimeout(context.Background(), cancelAskTimeout)
			err := stop(askCtx)
			cancel()
			if err != nil {
				mu.Lock()
				fmt.Fprintf(a.stderr, "corral did not take the cancel: %v\n", err)
				mu.Unlock()
				endStream()
				return
			}
			select {
			case <-done:
			case <-time.After(cancelEndTimeout):
				endStream()
			}
		})
	}
	var last models.Event
	err := newDaemon(dataDir).events(streamCtx, http.MethodPost, path, body, func(data []byte) error {
		if err := json.Unmarshal(data, &last); err != nil {
			return fmt.Errorf("bad progress event: %w", err)
		}
		mu.Lock()
		bar.show(last)
		mu.Unlock()
		return nil
	})
	mu.Lock()
	bar.end()
	mu.Unlock()
	switch {
	case err != nil:
		return last, err
	case last.Error != "":
		return last, fmt.Errorf("%s: %s", what, last.Error)
	case !last.Done:
		return last, fmt.Errorf("%s: the daemon ended the stream early; see corral models", what)
	}
	return last, nil
}

// progress draws a pull: one line per status, a bar while bytes move
// (redrawn in place on a terminal).
type progress struct {
	w      io.Writer
	quiet  bool
	tty    bool
	status string
	drawn  time.Time
}

func newProgress(w io.Writer, quiet bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, quiet: quiet, tty: tty}
}

func (p *progress) show(ev models.Event) {
	if p.quiet || ev.Done {
		return
	}
	if ev.Total <= 0 {
		if ev.Status != p.status {
			p.end()
			fmt.Fprintln(p.w, ev.Status)
			p.status = ev.Status
		}
		return
	}
	if !p.tty && ev.Status == p.status && time.Since(p.drawn) < 2*time.Second && ev.Completed < ev.Total {
		return
	}
	p.status, p.drawn = ev.Status, time.Now()
	pct := ev.Completed * 100 / ev.Total
	const width = 30
	fill := int(pct) * width / 100
	line := fmt.Sprintf("%-28s [%s%s] %3d%% %s/%s", ev.Status, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pct, engine.IECBytes(ev.Completed), engine.IECBytes(ev.Total))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) end() {
	if p.tty && p.status != "" && !p.drawn.IsZero() {
		fmt.Fprintln(p.w)
		p.drawn = time.Time{}
	}
}

func (a *app) rmCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("rm", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	model, err := oneArg(fs, args, "usage: corral rm MODEL")
	if err != nil {
		return helpOK(err)
	}
	var out map[string]string
	if err := newDaemon(*dataDir).do(ctx, http.MethodPost, "/api/v1/models/delete", map[string]string{"model": model}, &out); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "deleted %s from every instance\n", out["deleted"])
	return nil
}

func (a *app) placeCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("place", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	replicas := fs.Int("replicas", 0, "keep the model loaded on this many instances")
	gpus := fs.String("gpus", "", "keep it loaded on these GPUs (indexes such as 0,2; instance numbers on a CPU host)")
	keepAlive := fs.String("keep-alive", "", "how long it stays loaded after use (default -1: always)")
	clear := fs.Bool("clear", false, "remove the model's placement")
	model, err := oneArg(fs, args, "usage: corral place MODEL --replicas N | --gpus 0,2 [--keep-alive 30m] | --clear")
	if err != nil {
		return helpOK(err)
	}
	d := newDaemon(*dataDir)
	var out struct {
		Placements []models.Placement `json:"placements"`
	}
	if *clear {
		if err := d.do(ctx, http.MethodDelete, "/api/v1/placements?model="+url.QueryEscape(model), nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s is no longer placed\n", models.Canonical(model))
		return nil
	}
	p := models.Placement{Model: model, Replicas: *replicas, KeepAlive: *keepAlive}
	if *gpus != "" {
		for _, f := range strings.Split(*gpus, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return usageError{fmt.Sprintf("--gpus %q: give GPU indexes such as 0,2", *gpus)}
			}
			p.GPUs = append(p.GPUs, n)
		}
	}
	if err := d.do(ctx, http.MethodPut, "/api/v1/placements", p, &out); err != nil {
		return err
	}
	for _, q := range out.Placements {
		if q.Model == models.Canonical(model) {
			fmt.Fprintf(a.stdout, "%s: %s\n", q.Model, q.String())
		}
	}
	return nil
}

// importCmd creates a model from a local GGUF file, with no registry: the
// file goes to the daemon, which uploads it through one instance.
func (a *app) importCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("models import", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	name := fs.String("name", "", "the model's name, such as tiny:latest (required)")
	template := fs.String("template", "", "the prompt template, in Ollama's Go template syntax")
	system := fs.String("system", "", "the default system prompt")
	var params stringList
	fs.Var(&params, "param", "a parameter, key=value (repeatable), such as temperature=0.7 or stop=</s>")
	file, err := oneArg(fs, args, "usage: corral models import FILE.gguf --name NAME [--template T] [--param k=v]...")
	if err != nil {
		return helpOK(err)
	}
	if *name == "" {
		return usageError{"corral models import: --name is required"}
	}
	if _, err := models.ParseParams(params); err != nil {
		return usageError{err.Error()}
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer f.Close()
	q := url.Values{"name": {*name}, "file": {filepath.Base(file)}, "param": params}
	if *template != "" {
		q.Set("template", *template)
	}
	if *system != "" {
		q.Set("system", *system)
	}
	last, err := a.follow(ctx, *dataDir, "/api/v1/models/import?"+q.Encode(), f, false, "import "+*name, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s is on %s\n", last.Model, strings.Join(last.Instances, ", "))
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
