package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"corral/engine"
	"corral/engine/store"
)

// errNothingToDo stops corral down after an empty plan.
var errNothingToDo = errors.New("nothing to remove")

// downCmd removes what this data dir's corral made on Docker. It refuses
// while that corral runs, rather than stopping it: a daemon under systemd
// would be started again and make everything anew, so stopping it is the
// operator's step (systemctl stop corral), said in the message.
func (a *app) downCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("down", a.stdout)
	dataDir := fs.String("data-dir", defaultDataDir(), "corral's data dir: down removes only what its store owns")
	namespace := fs.String("namespace", "", "the namespace to take down (default: the one corral serve last used with this data dir, else corral)")
	dockerHost := fs.String("docker-host", "", "Docker Engine address (default: DOCKER_HOST or the local socket)")
	volumes := fs.Bool("volumes", false, "also delete the volumes: the models and the chat UI's data (asks first, unless --yes)")
	yes := fs.Bool("yes", false, "delete the volumes without asking (with --volumes)")
	// The namespace and the Docker host are serve's settings, where its
	// containers are: down reads them as serve does. CORRAL_YES is down's
	// own (the confirmation for scripts); --volumes never comes from the
	// environment, so nothing set for serve deletes data.
	fs.fromEnv("namespace", "docker-host", "yes")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if _, err := os.Stat(filepath.Join(*dataDir, store.FileName)); err != nil {
		return fmt.Errorf("no corral store in %s: pass the --data-dir that corral serve used (down removes only what that store owns)", *dataDir)
	}
	st, err := store.Open(*dataDir)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("corral is running with data dir %s: stop it first (systemctl stop corral, or Ctrl-C where it runs), then run corral down again; nothing was removed", *dataDir)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	ns := *namespace
	if ns == "" {
		if ns, err = engine.RecordedNamespace(st); err != nil {
			return err
		}
	}
	if ns == "" {
		ns = "corral"
	}
	if !namespaceRE.MatchString(ns) {
		return usageError{fmt.Sprintf("--namespace %q: use 1-40 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit", ns)}
	}
	cfg := engine.Config{Namespace: ns, DockerHost: *dockerHost, Store: st,
		Logger: slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	plan, err := engine.Down(ctx, cfg, *volumes, func(p engine.DownPlan) error {
		a.printDownPlan(p, *dataDir)
		if p.Empty() {
			return errNothingToDo
		}
		if len(p.Volumes) > 0 && !*yes {
			return a.confirmVolumes()
		}
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		fmt.Fprintf(a.stdout, "nothing of this store's is left in namespace %q\n", ns)
		return nil
	}
	if err != nil {
		return err
	}
	var gone []string
	if n := len(plan.Containers); n > 0 {
		gone = append(gone, plural(n, "container"))
	}
	if plan.Network != "" {
		gone = append(gone, "the network")
	}
	if n := len(plan.Volumes); n > 0 {
		gone = append(gone, plural(n, "volume"))
	}
	if plan.Claim != "" {
		gone = append(gone, "the ownership record")
	}
	fmt.Fprintf(a.stdout, "removed %s. The store in %s keeps the keys, usage and settings: corral serve starts it all again.\n", strings.Join(gone, ", "), *dataDir)
	return nil
}

func (a *app) printDownPlan(p engine.DownPlan, dataDir string) {
	w := a.stdout
	fmt.Fprintf(w, "namespace %q of the corral with data dir %s:\n", p.Namespace, dataDir)
	for _, c := range p.Containers {
		fmt.Fprintf(w, "  remove container  %s\n", c)
	}
	if p.Network != "" {
		fmt.Fprintf(w, "  remove network    %s\n", p.Network)
	}
	if p.Claim != "" {
		fmt.Fprintf(w, "  remove volume     %s (the record that this corral owns the namespace)\n", p.Claim)
	}
	for _, v := range p.Volumes {
		fmt.Fprintf(w, "  DELETE volume     %s and everything in it\n", v)
	}
	for _, v := range p.Kept {
		fmt.Fprintf(w, "  keep volume       %s (--volumes deletes it)\n", v)
	}
	for _, f := range p.Foreign {
		fmt.Fprintf(w, "  leave             %s: another corral's\n", f)
	}
}

// confirmVolumes asks before volumes are deleted. Nobody at a terminal
// to answer means no: --yes says it up front.
func (a *app) confirmVolumes() error {
	if f, ok := a.stdin.(*os.File); ok {
		if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			return fmt.Errorf("deleting volumes needs a yes: run corral down --volumes at a terminal, or add --yes (CORRAL_YES=true); nothing was removed")
		}
	}
	fmt.Fprint(a.stdout, "Delete these volumes and everything in them (models, the chat UI's accounts and chats)? Type yes: ")
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return errors.New("not confirmed; nothing was removed")
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
