package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"corral/engine"
	"corral/engine/chatui"
)

// ChatUIInfo is what status shows of the chat UI beyond its containers.
type ChatUIInfo struct {
	Mode string `json:"mode"`
	URL  string `json:"url,omitempty"` // where users open it
	// AccessCode is LobeChat's password, made once by corral.
	AccessCode string `json:"access_code,omitempty"`
}

// Status is the chat UI's part of the status report.
func (c *chatUI) Status() any {
	info := ChatUIInfo{Mode: c.cfg.Mode, URL: c.publicURL}
	if info.URL == "" && c.listener != nil {
		// Its host may be any address of this server.
		info.URL = "http://" + c.listener.String()
	}
	if c.cfg.Mode == chatui.LobeChat {
		if s, err := chatui.LoadSecrets(c.st); err == nil {
			info.AccessCode = s.AccessCode
		}
	}
	return info
}

const chatUIUsage = "usage: corral chat-ui [status|restart|recreate]: show the chat UI, restart its container, or replace it with a new one (its data volume stays)"

func (a *app) chatUICmd(ctx context.Context, args []string) error {
	// The action may come first (its help is then its own) or among the
	// flags: corral chat-ui --data-dir D restart.
	path := "chat-ui"
	var pos []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		path += " " + args[0]
		pos, args = args[:1], args[1:]
	}
	fs := newFlagSet(path, a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	rest, err := fs.parseArgs(args, 1-len(pos))
	if err != nil {
		return helpOK(err)
	}
	pos = append(pos, rest...)
	action := "status"
	if len(pos) > 0 && pos[0] != "" {
		action = pos[0]
	}
	d := newDaemon(*dataDir)
	var st statusReport
	if err := d.getJSON(ctx, "/api/v1/status", &st); err != nil {
		return err
	}
	switch action {
	case "status":
	case "restart", "recreate":
		if len(st.Apps) == 0 {
			return fmt.Errorf("chat-ui %s: corral runs no chat UI (serve --chat-ui none)", action)
		}
		for _, app := range st.Apps {
			var after engine.Status
			if err := d.do(ctx, http.MethodPost, "/api/v1/instances/"+url.PathEscape(app.Name)+"/"+action, nil, &after); err != nil {
				return err
			}
			st.Status = after
		}
	default:
		return usageError{fmt.Sprintf("chat-ui: unknown action %q; %s", action, chatUIUsage)}
	}
	printChatUI(a.stdout, st.ChatUI, st.Apps)
	return nil
}

// printChatUI shows the chat UI and its containers; nothing for none.
func printChatUI(w io.Writer, info *ChatUIInfo, apps []engine.AppStatus) {
	if info == nil && len(apps) == 0 {
		return
	}
	fmt.Fprint(w, "\nChat UI")
	if info != nil {
		fmt.Fprintf(w, ": %s", info.Mode)
		if info.URL != "" {
			fmt.Fprintf(w, " at %s", info.URL)
		}
		if info.AccessCode != "" {
			fmt.Fprintf(w, ", access code %s", info.AccessCode)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tPHASE\tCONTAINER\tIMAGE\tENDPOINT\tVOLUME\tREASON")
	for _, a := range apps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Phase, short(a.ContainerID), a.Image, dash(a.Endpoint), dash(a.Volume), a.Reason)
	}
	tw.Flush()
}
