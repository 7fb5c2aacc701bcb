package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"corral/engine/keys"
	"corral/ui"
)

// keysLimitLong is the rest of corral keys limit's help.
const keysLimitLong = "It sets requests per minute, tokens per minute, tokens per UTC day and\n" +
	"tokens per UTC month, and the key's place in corral's queue when the GPUs\n" +
	"are busy: its weight against other keys (default 1), its class (batch\n" +
	"waits behind every interactive request), how many requests it may have\n" +
	"waiting and for how long. Only the flags given change; 0 lifts a limit or\n" +
	"restores the default.\n"

// parseNamed parses `NAME [flags]`.
func parseNamed(fs *flagSet, args []string) (string, error) {
	return oneArg(fs, args, fmt.Sprintf("%s: missing NAME (run %s --help)", fs.Name(), fs.Name()))
}

func (a *app) keysCreate(ctx context.Context, args []string) error {
	fs := newFlagSet("keys create", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	note := fs.String("note", "", "note for admins: who has the key, what for")
	var expires lifetime
	fs.Var(&expires, "expires", "lifetime, such as 720h or 30d (default: never expires)")
	models := fs.String("models", "", "comma-separated models the key may use, such as llama3.2,qwen3:8b (default: all)")
	name, err := parseNamed(fs, args)
	if err != nil {
		return helpOK(err)
	}
	req := ui.NewKey{Name: name, Note: *note, Models: splitList(*models)}
	if expires > 0 {
		req.ExpiresAt = time.Now().Add(time.Duration(expires)).UTC()
	}
	var created ui.CreatedKey
	if err := newDaemon(*dataDir).postJSON(ctx, "/api/v1/keys", req, &created); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, created.Secret)
	until := "never expires"
	if !created.ExpiresAt.IsZero() {
		until = "expires " + stamp(created.ExpiresAt)
	}
	fmt.Fprintf(a.stderr, "created API key %q (%s, %s); copy it now: it will not be shown again\n", created.Name, created.Prefix, until)
	return nil
}

func (a *app) keysList(ctx context.Context, args []string) error {
	fs := newFlagSet("keys list", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	var list ui.KeyList
	if err := newDaemon(*dataDir).getJSON(ctx, "/api/v1/keys", &list); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if len(list.Keys) == 0 {
		fmt.Fprintln(a.stdout, "no API keys yet: create one with corral keys create NAME")
		return nil
	}
	printKeys(a.stdout, list.Keys)
	return nil
}

func printKeys(w io.Writer, list []keys.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPREFIX\tCREATED\tLAST USED\tEXPIRES\tSTATUS\tMODELS\tLIMITS")
	for _, k := range list {
		models := "all"
		if len(k.Models) > 0 {
			models = strings.Join(k.Models, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, k.Prefix, stamp(k.Created), orNever(k.LastUsed), orNever(k.ExpiresAt), k.Status, models, ui.LimitsText(k.Limits))
	}
	tw.Flush()
}

func (a *app) keysRevoke(ctx context.Context, args []string) error {
	fs := newFlagSet("keys revoke", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	name, err := parseNamed(fs, args)
	if err != nil {
		return helpOK(err)
	}
	var k keys.Key
	if err := newDaemon(*dataDir).deleteJSON(ctx, "/api/v1/keys/"+url.PathEscape(name), &k); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "revoked API key %q (%s): requests with it are refused from now on\n", k.Name, k.Prefix)
	return nil
}

func (a *app) keysLimit(ctx context.Context, args []string) error {
	fs := newFlagSet("keys limit", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	var req ui.KeyLimits
	var rpm, tpm, tpd, tpmo limitFlag
	fs.Var(&rpm, "rpm", "requests per minute, sliding over the last 60 seconds (0: unlimited)")
	fs.Var(&tpm, "tpm", "tokens per minute, sliding over the last 60 seconds (0: unlimited)")
	fs.Var(&tpd, "tpd", "tokens per UTC day (0: unlimited)")
	fs.Var(&tpmo, "tpmo", "tokens per UTC month (0: unlimited)")
	weight := queueFlag{max: keys.MaxWeight, zero: "the default, 1"}
	fs.Var(&weight, "weight", "share of busy GPUs against other keys waiting: 2 gets twice the turns of 1 (0: the default, 1)")
	var class classFlag
	fs.Var(&class, "class", "interactive, or batch: waits behind every interactive request (default interactive)")
	maxQueue := queueFlag{max: keys.MaxQueue, zero: "the server's default"}
	fs.Var(&maxQueue, "max-queue", "requests it may have waiting in corral's queue; more get 429 (0: the server's default)")
	var maxWait waitFlag
	fs.Var(&maxWait, "max-wait", "longest wait in corral's queue before a 429, such as 30s or 2m (0: the server's default)")
	name, err := parseNamed(fs, args)
	if err != nil {
		return helpOK(err)
	}
	for _, f := range []struct {
		flag string
		v    *limitFlag
		to   **int64
	}{
		{"rpm", &rpm, &req.RequestsPerMinute},
		{"tpm", &tpm, &req.TokensPerMinute},
		{"tpd", &tpd, &req.TokensPerDay},
		{"tpmo", &tpmo, &req.TokensPerMonth},
		{"weight", &weight.v, &req.Weight},
		{"max-queue", &maxQueue.v, &req.MaxQueue},
		{"max-wait", (*limitFlag)(&maxWait), &req.MaxWaitSeconds},
	} {
		if fs.set[f.flag] {
			v := int64(*f.v)
			*f.to = &v
		}
	}
	if fs.set["class"] {
		b := bool(class)
		req.Batch = &b
	}
	if req == (ui.KeyLimits{}) {
		return usageError{"keys limit: give one or more of --rpm, --tpm, --tpd, --tpmo, --weight, --class, --max-queue and --max-wait (0 lifts a limit or restores a default; run corral keys limit --help)"}
	}
	var k keys.Key
	if err := newDaemon(*dataDir).do(ctx, http.MethodPut, "/api/v1/keys/"+url.PathEscape(name)+"/limits", req, &k); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "limits of API key %q: %s\n", k.Name, longLimits(k.Limits))
	return nil
}

func (a *app) keysRotateInternal(ctx context.Context, args []string) error {
	fs := newFlagSet("keys rotate-internal", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	var rotated ui.CreatedKey
	if err := newDaemon(*dataDir).postJSON(ctx, "/api/v1/keys/internal/rotate", nil, &rotated); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, rotated.Secret)
	fmt.Fprintf(a.stderr, "rotated the chat UI's API key %q (%s): the previous secret no longer works; this one will not be shown again\n", rotated.Name, rotated.Prefix)
	return nil
}

// limitFlag is a limit: a whole number from 0, or "unlimited" for 0.
type limitFlag int64

func (l *limitFlag) String() string { return "" }

func (l *limitFlag) Set(s string) error {
	if s == "unlimited" {
		*l = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return errors.New("give a whole number from 0 (0 or unlimited lifts the limit)")
	}
	*l = limitFlag(n)
	return nil
}

// queueFlag is a queue setting: a whole number from 0, the default, to
// max.
type queueFlag struct {
	v    limitFlag
	max  int64
	zero string // what 0 means
}

func (q *queueFlag) String() string { return "" }

func (q *queueFlag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > q.max {
		return fmt.Errorf("give a whole number from 0 (%s) to %d", q.zero, q.max)
	}
	q.v = limitFlag(n)
	return nil
}

// classFlag is a key's class in the queue: true for batch.
type classFlag bool

func (c *classFlag) String() string { return "" }

func (c *classFlag) Set(s string) error {
	switch s {
	case "interactive":
		*c = false
	case "batch":
		*c = true
	default:
		return errors.New("give interactive or batch")
	}
	return nil
}

// waitFlag is the longest wait in the queue, in whole seconds.
type waitFlag int64

func (w *waitFlag) String() string { return "" }

func (w *waitFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return errors.New("give a duration such as 30s or 2m (0: the server's default)")
	case d < 0 || d > keys.MaxWait:
		return fmt.Errorf("give a duration from 0 (the server's default) to %s", ui.ShortDuration(keys.MaxWait))
	case d%time.Second != 0:
		return errors.New("give whole seconds, such as 30s or 2m")
	}
	*w = waitFlag(d / time.Second)
	return nil
}

// longLimits writes l in words.
func longLimits(l keys.Limits) string {
	var parts []string
	for _, f := range []struct {
		what string
		v    int64
	}{{"requests per minute", l.RequestsPerMinute}, {"tokens per minute", l.TokensPerMinute}, {"tokens per day", l.TokensPerDay}, {"tokens per month", l.TokensPerMonth}} {
		if f.v > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", f.v, f.what))
		} else {
			parts = append(parts, "unlimited "+f.what)
		}
	}
	queue := []string{fmt.Sprintf("weight %d", max(l.Weight, 1)), "interactive"}
	if l.Batch {
		queue[1] = "batch"
	}
	if l.MaxQueue > 0 {
		queue = append(queue, fmt.Sprintf("up to %d requests waiting", l.MaxQueue))
	} else {
		queue = append(queue, "default queue length")
	}
	if l.MaxWaitSeconds > 0 {
		queue = append(queue, "waits up to "+ui.ShortDuration(time.Duration(l.MaxWaitSeconds)*time.Second))
	} else {
		queue = append(queue, "default wait")
	}
	return strings.Join(parts, ", ") + "; " + strings.Join(queue, ", ")
}

// lifetime is a duration flag that also takes whole days, such as 30d.
type lifetime time.Duration

func (l *lifetime) String() string {
	if *l == 0 {
		return ""
	}
	return time.Duration(*l).String()
}

func (l *lifetime) Set(s string) error {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return errors.New("use a duration such as 720h or 30d")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return errors.New("use a duration such as 720h or 30d")
		}
	}
	if d <= 0 {
		return errors.New("must be more than zero")
	}
	*l = lifetime(d)
	return nil
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func stamp(t time.Time) string { return t.Local().Format("2006-01-02 15:04") }

func orNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return stamp(t)
}
