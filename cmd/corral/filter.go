package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"corral/ui"
)

// filterCmd shows or sets the content filter's phrase list.
func (a *app) filterCmd(ctx context.Context, args []string) error {
	const use = "usage: corral filter [list] | set PHRASE... | clear"
	path, sub := "filter", "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
		path += " " + sub
	}
	fs := newFlagSet(path, a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	// Phrases come before the flags: "corral filter set 'a b' c --data-dir D".
	var phrases []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		phrases, args = append(phrases, args[0]), args[1:]
	}
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	d := newDaemon(*dataDir)
	var out ui.FilterList
	var err error
	switch {
	case sub == "list" && len(phrases) == 0:
		err = d.getJSON(ctx, "/api/v1/filter", &out)
	case sub == "set" && len(phrases) > 0:
		err = d.do(ctx, http.MethodPut, "/api/v1/filter", ui.FilterList{Phrases: phrases}, &out)
	case sub == "clear" && len(phrases) == 0:
		err = d.do(ctx, http.MethodPut, "/api/v1/filter", ui.FilterList{}, &out)
	default:
		return usageError{use}
	}
	if err != nil {
		return err
	}
	if !out.Enabled {
		fmt.Fprintln(a.stdout, "content filter off (no phrases)")
		return nil
	}
	fmt.Fprintf(a.stdout, "content filter on, %d phrases:\n", len(out.Phrases))
	for _, p := range out.Phrases {
		fmt.Fprintf(a.stdout, "  %s\n", p)
	}
	return nil
}
