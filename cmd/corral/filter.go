package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// listSetting is a list the daemon keeps and applies at once, which a
// command shows (list, the default), replaces (set ITEM...) or empties
// (clear).
type listSetting struct {
	command string // the command's name
	path    string // its admin API endpoint (GET and PUT)
	field   string // the list's name in the API's JSON
	what    string // what the list is, for people: "content filter"
	items   string // what its entries are: "phrases"
}

func (a *app) filterCmd(ctx context.Context, args []string) error {
	return a.listSettingCmd(ctx, args, listSetting{command: "filter", path: "/api/v1/filter", field: "phrases", what: "content filter", items: "phrases"})
}

func (a *app) corsCmd(ctx context.Context, args []string) error {
	return a.listSettingCmd(ctx, args, listSetting{command: "cors", path: "/api/v1/settings/cors", field: "origins", what: "browser access (CORS)", items: "origins"})
}

func (a *app) listSettingCmd(ctx context.Context, args []string, s listSetting) error {
	use := "usage: corral " + s.command + " [list] | set " + strings.ToUpper(strings.TrimSuffix(s.items, "s")) + "... | clear"
	path, sub := s.command, "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
		path += " " + sub
	}
	fs := newFlagSet(path, a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	// Items come before the flags: "corral filter set 'a b' c --data-dir D".
	var items []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		items, args = append(items, args[0]), args[1:]
	}
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	d := newDaemon(*dataDir)
	var out map[string]json.RawMessage
	var err error
	switch {
	case sub == "list" && len(items) == 0:
		err = d.getJSON(ctx, s.path, &out)
	case sub == "set" && len(items) > 0:
		err = d.do(ctx, http.MethodPut, s.path, map[string][]string{s.field: items}, &out)
	case sub == "clear" && len(items) == 0:
		err = d.do(ctx, http.MethodPut, s.path, map[string][]string{s.field: {}}, &out)
	default:
		return usageError{use}
	}
	if err != nil {
		return err
	}
	var list []string
	if err := json.Unmarshal(out[s.field], &list); err != nil && len(out[s.field]) > 0 {
		return fmt.Errorf("%s: corral answered %s: %w", s.command, out[s.field], err)
	}
	if len(list) == 0 {
		fmt.Fprintf(a.stdout, "%s off (no %s)\n", s.what, s.items)
		return nil
	}
	fmt.Fprintf(a.stdout, "%s on, %d %s:\n", s.what, len(list), s.items)
	for _, p := range list {
		fmt.Fprintf(a.stdout, "  %s\n", p)
	}
	return nil
}
