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

const keysUsage = "Usage: corral keys create NAME [--note TEXT] [--expires 720h|30d] [--models a,b]\n" +
	"       corral keys list [--json]\n" +
	"       corral keys revoke NAME\n" +
	"       corral keys limit NAME [--rpm N] [--tpm N] [--tpd N] [--tpmo N]\n" +
	"       corral keys rotate-internal\n" +
	"\nlimit sets requests per minute, tokens per minute, tokens per UTC day and\n" +
	"tokens per UTC month; only the flags given change, and 0 lifts a limit.\n" +
	"rotate-internal gives the chat UI's own key (" + keys.InternalName + ") a new secret.\n"

func (a *app) keysCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"keys: missing subcommand: use corral keys create, list, revoke, limit or rotate-internal (run corral keys help)"}
	}
	switch args[0] {
	case "create":
		return a.keysCreate(ctx, args[1:])
	case "list":
		return a.keysList(ctx, args[1:])
	case "revoke":
		return a.keysRevoke(ctx, args[1:])
	case "limit":
		return a.keysLimit(ctx, args[1:])
	case "rotate-internal":
		return a.keysRotateInternal(ctx, args[1:])
	case "help", "-h", "--help", "-help":
		io.WriteString(a.stdout, keysUsage)
		return nil
	}
	return usageError{fmt.Sprintf("keys: unknown subcommand %q: use create, list, revoke, limit or rotate-internal (run corral keys help)", args[0])}
}

// parseNamed parses `NAME [flags]`.
func parseNamed(fs *flagSet, args []string) (string, error) {
	return oneArg(fs, args, fmt.Sprintf("%s: missing NAME (run %s --help)", fs.Name(), fs.Name()))
}

func (a *app) keysCreate(ctx context.Context, args []string) error {
	fs := newFlagSet("keys create NAME", a.stdout)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, k.Prefix, stamp(k.Created), orNever(k.LastUsed), orNever(k.ExpiresAt), k.Status, models, shortLimits(k.Limits))
	}
	tw.Flush()
}

func (a *app) keysRevoke(ctx context.Context, args []string) error {
	fs := newFlagSet("keys revoke NAME", a.stdout)
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
	fs := newFlagSet("keys limit NAME", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	var req ui.KeyLimits
	var rpm, tpm, tpd, tpmo limitFlag
	fs.Var(&rpm, "rpm", "requests per minute, sliding over the last 60 seconds (0: unlimited)")
	fs.Var(&tpm, "tpm", "tokens per minute, sliding over the last 60 seconds (0: unlimited)")
	fs.Var(&tpd, "tpd", "tokens per UTC day (0: unlimited)")
	fs.Var(&tpmo, "tpmo", "tokens per UTC month (0: unlimited)")
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
	} {
		if fs.set[f.flag] {
			v := int64(*f.v)
			*f.to = &v
		}
	}
	if req == (ui.KeyLimits{}) {
		return usageError{"keys limit: give one or more of --rpm, --tpm, --tpd and --tpmo (0 lifts a limit; run corral keys limit --help)"}
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

// shortLimits writes l for the key list, such as "rpm=60 tpd=100000".
func shortLimits(l keys.Limits) string {
	var parts []string
	for _, f := range []struct {
		name string
		v    int64
	}{{"rpm", l.RequestsPerMinute}, {"tpm", l.TokensPerMinute}, {"tpd", l.TokensPerDay}, {"tpmo", l.TokensPerMonth}} {
		if f.v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", f.name, f.v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
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
	return strings.Join(parts, ", ")
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
