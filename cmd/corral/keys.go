package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"       corral keys revoke NAME\n"

func (a *app) keysCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"keys: missing subcommand: use corral keys create, list or revoke (run corral keys help)"}
	}
	switch args[0] {
	case "create":
		return a.keysCreate(ctx, args[1:])
	case "list":
		return a.keysList(ctx, args[1:])
	case "revoke":
		return a.keysRevoke(ctx, args[1:])
	case "help", "-h", "--help", "-help":
		io.WriteString(a.stdout, keysUsage)
		return nil
	}
	return usageError{fmt.Sprintf("keys: unknown subcommand %q: use create, list or revoke (run corral keys help)", args[0])}
}

// parseNamed parses `NAME [flags]`: the name comes first.
func parseNamed(fs *flagSet, args []string) (string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := fs.parse(args); err != nil {
			return "", err
		}
		return "", usageError{fmt.Sprintf("%s: missing NAME (run %s --help)", fs.Name(), fs.Name())}
	}
	return args[0], fs.parse(args[1:])
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
	fmt.Fprintln(tw, "NAME\tPREFIX\tCREATED\tLAST USED\tEXPIRES\tSTATUS\tMODELS")
	for _, k := range list {
		models := "all"
		if len(k.Models) > 0 {
			models = strings.Join(k.Models, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, k.Prefix, stamp(k.Created), orNever(k.LastUsed), orNever(k.ExpiresAt), k.Status, models)
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
