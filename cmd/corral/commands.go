package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"corral/engine/keys"
	"corral/gpu"
)

// command is one command of the table below, or a subcommand of one;
// each lives in its own file.
type command struct {
	name    string // one word: "keys", or a subcommand's "create"
	args    string // what follows the name on the line, flags aside: "NAME"
	summary string
	long    string // more for its help, after the summary; optional
	// run runs it with the arguments after its name; nil for a command
	// that needs one of its subcommands, and for a subcommand that its
	// parent's run handles itself (chat-ui restart).
	run  func(a *app, ctx context.Context, args []string) error
	subs []command
}

// app carries what commands share; tests swap its parts.
type app struct {
	stdin          io.Reader // confirmations (corral down --volumes)
	stdout, stderr io.Writer
	discover       func() gpu.Inventory
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdin: os.Stdin, stdout: stdout, stderr: stderr, discover: gpu.Discover}
}

func commands() []command {
	return []command{
		{name: "serve", summary: "run the daemon: GPUs, Ollama instances, admin API", run: (*app).serveCmd},
		{name: "status", summary: "show the instances of the running daemon", run: (*app).statusCmd},
		{name: "gpus", summary: "list the NVIDIA GPUs on this host", run: (*app).gpusCmd},
		{name: "keys", summary: "create, list and revoke the gateway's API keys", subs: []command{
			{name: "create", args: "NAME", summary: "make an API key and print its secret, once", run: (*app).keysCreate},
			{name: "list", summary: "list the API keys: last use, expiry, models and limits", run: (*app).keysList},
			{name: "revoke", args: "NAME", summary: "revoke an API key: requests with it are refused from then on", run: (*app).keysRevoke},
			{name: "limit", args: "NAME", summary: "set a key's rate and token limits and its place in the queue", long: keysLimitLong, run: (*app).keysLimit},
			{name: "rotate-internal", summary: "give the chat UI's own key (" + keys.InternalName + ") a new secret", run: (*app).keysRotateInternal},
		}},
		{name: "usage", summary: "show requests and tokens by key, model, user or day", run: (*app).usageCmd},
		{name: "models", summary: "list the models on the instances", run: (*app).modelsCmd, subs: []command{
			{name: "import", args: "FILE.gguf", summary: "create a model from a local GGUF file, with no registry", run: (*app).importCmd},
		}},
		{name: "pull", args: "MODEL", summary: "pull a model once for every instance; --cancel stops a pull under way", long: pullLong, run: (*app).pullCmd},
		{name: "rm", args: "MODEL", summary: "delete a model from every instance", run: (*app).rmCmd},
		{name: "place", args: "MODEL", summary: "keep a model loaded on N instances or on chosen GPUs", run: (*app).placeCmd},
		{name: "filter", args: "[list|set|clear]", summary: "show or set the content filter's phrases", run: (*app).filterCmd, subs: []command{
			{name: "list", summary: "show the phrases (the default)"},
			{name: "set", args: "PHRASE...", summary: "refuse requests and answers with any of these phrases"},
			{name: "clear", summary: "remove every phrase: the filter is off"},
		}},
		{name: "cors", args: "[list|set|clear]", summary: "show or set the web pages (origins) that may call the gateway from a browser", run: (*app).corsCmd, subs: []command{
			{name: "list", summary: "show the allowed origins (the default)"},
			{name: "set", args: "ORIGIN...", summary: "allow these origins, such as https://app.example.com, or * for any"},
			{name: "clear", summary: "allow none: browsers may not call the gateway (the default)"},
		}},
		{name: "weight", args: "INSTANCE N", summary: "set an instance's share of gateway traffic", run: (*app).weightCmd},
		{name: "chat-ui", args: "[status|restart|recreate]", summary: "show the chat UI, restart it or recreate it", run: (*app).chatUICmd, subs: []command{
			{name: "status", summary: "show the chat UI, its address and its containers (the default)"},
			{name: "restart", summary: "restart the chat UI's containers"},
			{name: "recreate", summary: "replace the chat UI's containers with new ones; its data volume stays"},
		}},
		{name: "backup", args: "FILE", summary: "copy the store (keys, usage, settings, certificates) to a file, serving or not", run: (*app).backupCmd},
		{name: "restore", args: "FILE", summary: "put a backup in place of the store, with corral stopped", run: (*app).restoreCmd},
		{name: "down", summary: "remove this corral's containers and network; its volumes with --volumes", run: (*app).downCmd},
		{name: "admin-link", summary: "print a one-time link that signs a browser in to the admin pages", run: (*app).adminLinkCmd},
		{name: "admin-token", summary: "print the admin token, or replace it with --rotate (signs every admin out)", run: (*app).adminTokenCmd},
		{name: "doctor", summary: "check what serve needs: Docker, GPUs and their runtime, ports, domain, clock, disk, images", run: (*app).doctorCmd},
		{name: "version", summary: "print the version, commit, build date and whether NVML is compiled in", run: (*app).versionCmd},
		{name: "help", args: "[COMMAND [SUBCOMMAND]]", summary: "show this help, or a command's", run: (*app).helpCmd},
	}
}

// findCommand looks up a command by its words, such as ["keys",
// "create"].
func findCommand(path []string) (command, bool) {
	var c command
	list := commands()
	for _, word := range path {
		i := slices.IndexFunc(list, func(c command) bool { return c.name == word })
		if i < 0 {
			return command{}, false
		}
		c, list = list[i], list[i].subs
	}
	return c, len(path) > 0
}

// errUsage marks errors of the command line itself (exit status 2).
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Is(t error) bool {
	return t == errUsage
}

// helpOK turns the help request into success: help was printed.
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "--help", "-help":
		return true
	}
	return false
}

func (a *app) run(ctx context.Context, args []string) error {
	if len(args) == 0 || isHelp(args[0]) && len(args) == 1 {
		printHelp(a.stdout)
		return nil
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		name = "help"
	case "-v", "--version":
		name = "version"
	}
	c, ok := findCommand([]string{name})
	if !ok {
		return usageError{fmt.Sprintf("unknown command %q: run corral help", name)}
	}
	return a.dispatch(ctx, c, args[1:])
}

// dispatch runs c, or the subcommand that args name.
func (a *app) dispatch(ctx context.Context, c command, args []string) error {
	if len(args) > 0 {
		for _, s := range c.subs {
			if s.name == args[0] && s.run != nil {
				return s.run(a, ctx, args[1:])
			}
		}
	}
	if c.run != nil {
		return c.run(a, ctx, args)
	}
	// A command of subcommands alone (keys).
	var names []string
	for _, s := range c.subs {
		names = append(names, s.name)
	}
	use := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	switch {
	case len(args) == 0:
		return usageError{fmt.Sprintf("%s: missing subcommand: use corral %s %s (run corral help %s)", c.name, c.name, use, c.name)}
	case isHelp(args[0]):
		printCommandHelp(a.stdout, c)
		return nil
	}
	return usageError{fmt.Sprintf("%s: unknown subcommand %q: use %s (run corral help %s)", c.name, args[0], use, c.name)}
}

// helpCmd is corral help [COMMAND [SUBCOMMAND]]: the command's own
// --help.
func (a *app) helpCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || len(args) == 1 && args[0] == "help" {
		printHelp(a.stdout)
		return nil
	}
	if len(args) > 2 {
		return usageError{"help: give a command, and a subcommand of it: corral help keys create"}
	}
	c, ok := findCommand(args)
	if !ok {
		return usageError{fmt.Sprintf("help: no command %q: run corral help", strings.Join(args, " "))}
	}
	if len(args) == 2 {
		parent, _ := findCommand(args[:1])
		return a.dispatch(ctx, parent, []string{args[1], "--help"})
	}
	return a.dispatch(ctx, c, []string{"--help"})
}

// printHelp lists every command and subcommand.
func printHelp(w io.Writer) {
	type row struct{ use, summary string }
	var rows []row
	for _, c := range commands() {
		rows = append(rows, row{strings.TrimSpace(c.name + " " + c.args), c.summary})
		for _, s := range c.subs {
			rows = append(rows, row{strings.TrimSpace(c.name + " " + s.name + " " + s.args), s.summary})
		}
	}
	width := 0
	for _, r := range rows {
		width = max(width, len(r.use))
	}
	var b strings.Builder
	b.WriteString("corral: a private, GPU-balanced chat service in one binary\n\nUsage: corral <command> [flags]\n\nCommands:\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, r.use, r.summary)
	}
	b.WriteString("\nRun corral help <command> (or corral <command> --help) for its flags.\n" +
		"serve's flags can also be set as CORRAL_* environment variables (--domain is\n" +
		"CORRAL_DOMAIN), and doctor reads them as serve does. The other commands read\n" +
		"CORRAL_DATA_DIR, and down where serve's containers are; their --help marks\n" +
		"each flag that has a variable.\n")
	io.WriteString(w, b.String())
}

// printCommandHelp is the help of a command of subcommands alone.
func printCommandHelp(w io.Writer, c command) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: corral %s SUBCOMMAND [flags]\n", c.name)
	writeAbout(&b, c)
	writeSubcommands(&b, c.name, c)
	fmt.Fprintf(&b, "Run corral help %s SUBCOMMAND for its flags.\n", c.name)
	io.WriteString(w, b.String())
}

// writeAbout writes a command's summary and long text.
func writeAbout(b *strings.Builder, c command) {
	fmt.Fprintf(b, "\n%s\n", c.summary)
	if c.long != "" {
		fmt.Fprintf(b, "\n%s", c.long)
	}
}

// writeSubcommands lists the subcommands of c, the command at path.
func writeSubcommands(b *strings.Builder, path string, c command) {
	width := 0
	for _, s := range c.subs {
		width = max(width, len(strings.TrimSpace(s.name+" "+s.args)))
	}
	b.WriteString("\nSubcommands:\n")
	for _, s := range c.subs {
		fmt.Fprintf(b, "  corral %s %-*s  %s\n", path, width, strings.TrimSpace(s.name+" "+s.args), s.summary)
	}
}
