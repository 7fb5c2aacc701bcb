package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	meter "corral/engine/usage"
	"corral/ui"
)

// usageCmd reports the gateway's usage: requests and tokens by key,
// model, end user or day, with totals.
func (a *app) usageCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("usage", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "data dir of the running corral")
	by := fs.String("by", meter.ByKey, "group by key, model, user or day")
	since := fs.String("since", "", "from a date such as 2026-11-01, or days such as 7d (today and the 6 days before); UTC (default: all kept)")
	until := fs.String("until", "", "through a date such as 2026-11-30, included; UTC (default: today)")
	key := fs.String("key", "", "only the usage of this API key")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	switch *by {
	case meter.ByKey, meter.ByModel, meter.ByUser, meter.ByDay:
	default:
		return usageError{fmt.Sprintf("usage: --by %q: use key, model, user or day", *by)}
	}
	if _, err := meter.ParseSince(*since, time.Now()); err != nil {
		return usageError{fmt.Sprintf("usage: --since %q: use a date such as 2026-11-01 or days such as 7d", *since)}
	}
	if _, err := meter.ParseUntil(*until); err != nil {
		return usageError{fmt.Sprintf("usage: --until %q: use a date such as 2026-11-30", *until)}
	}
	q := url.Values{"by": {*by}}
	for name, v := range map[string]string{"since": *since, "until": *until, "key": *key} {
		if v != "" {
			q.Set(name, v)
		}
	}
	var rep ui.UsageReport
	if err := newDaemon(*dataDir).getJSON(ctx, "/api/v1/usage?"+q.Encode(), &rep); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if len(rep.Rows) == 0 {
		fmt.Fprintln(a.stdout, "no usage recorded "+period(rep))
		return nil
	}
	printUsage(a.stdout, rep)
	return nil
}

// period says which days a report covers.
func period(rep ui.UsageReport) string {
	var b strings.Builder
	switch {
	case rep.Since.IsZero() && rep.Until.IsZero():
		b.WriteString("in the days kept")
	case rep.Until.IsZero():
		fmt.Fprintf(&b, "since %s", rep.Since.UTC().Format(time.DateOnly))
	case rep.Since.IsZero():
		fmt.Fprintf(&b, "through %s", rep.Until.Add(-1).UTC().Format(time.DateOnly))
	default:
		fmt.Fprintf(&b, "from %s through %s", rep.Since.UTC().Format(time.DateOnly), rep.Until.Add(-1).UTC().Format(time.DateOnly))
	}
	if rep.Key != "" {
		fmt.Fprintf(&b, " for key %s", rep.Key)
	}
	return b.String()
}

func printUsage(w io.Writer, rep ui.UsageReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tREQUESTS\tPROMPT TOKENS\tCOMPLETION TOKENS\tTOTAL TOKENS\tERRORS\tAVG QUEUE\n", strings.ToUpper(rep.By))
	var total meter.Row
	for _, r := range rep.Rows {
		group := r.Group
		if group == "" {
			group = "(none)"
		}
		printUsageRow(tw, group, r)
		total.Requests += r.Requests
		total.PromptTokens += r.PromptTokens
		total.CompletionTokens += r.CompletionTokens
		total.Errors += r.Errors
		total.Queued += r.Queued
	}
	printUsageRow(tw, "TOTAL", total)
	tw.Flush()
	fmt.Fprintf(w, "(UTC days, %s)\n", period(rep))
}

// printUsageRow prints one group; AVG QUEUE is the time its requests
// waited in corral's queue for an instance, on average.
func printUsageRow(w io.Writer, group string, r meter.Row) {
	var avg time.Duration
	if r.Requests > 0 {
		avg = r.Queued / time.Duration(r.Requests)
	}
	fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", group, r.Requests, r.PromptTokens, r.CompletionTokens, r.PromptTokens+r.CompletionTokens, r.Errors, roundWait(avg))
}
