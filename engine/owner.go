package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"corral/engine/store"
)

// Ownership of a namespace.
//
// Two corrals with different data dirs but one --namespace would each see
// the other's containers as outdated versions of their own and replace
// them in turn. So a namespace has one owner: a store, known by its ID
// (store.Store.ID). Only the owner changes the namespace's containers; a
// second corral that finds the namespace owned refuses to start, naming
// the owner's data dir, unless it is told to take over.
//
// The record of who owns a namespace is the volume NAMESPACE-owner: empty,
// never mounted, labelled with the owner's store ID and data dir. It is a
// volume of its own because Docker cannot change a label after an object
// is made, and ownership must be able to change hands (--take-over): this
// volume can be removed and made again at any time, where the network
// cannot while containers use it, nor a container without stopping it.
// The engine looks at it on every reconcile pass, so a corral whose
// namespace another one took over stops at its next pass.
//
// Everything corral makes also carries the owner's labels (LabelOwner,
// LabelDataDir): they name the owner to whoever looks, and they decide
// whose a container is. A container is ours when its owner label is our
// store's ID, or a store we took over from (kept in the store as adopted
// owners), or when it has none: it was made by a corral from before
// ownership, and it is adopted as it is. Docker cannot relabel a running
// container and recreating it would interrupt traffic, so it keeps no
// label until its spec changes and it is replaced anyway; for the same
// reason the owner labels are not part of the spec hash (specHash), so an
// upgrade that adds them replaces nothing. The reconciler never removes,
// replaces or starts a container of another owner.
//
// Without the record (a namespace of a corral from before ownership, a new
// one, or a record removed by docker volume prune) the labels decide: any
// other owner's label refuses the start, as the record would have.

const (
	LabelOwner   = "corral.owner"    // the store ID of the corral that made it
	LabelDataDir = "corral.data-dir" // that corral's data dir, for the messages
	roleClaim    = "owner"
)

// ClaimName is the volume that records who owns the namespace.
func (c Config) ClaimName() string { return c.Namespace + "-owner" }

// OwnerError says that another corral owns the namespace.
type OwnerError struct {
	Namespace string
	DataDir   string // the owner's, as its labels say
	// Lost: this corral owned the namespace while it ran, and another one
	// took it over.
	Lost bool
}

func (e *OwnerError) Error() string {
	dir := e.DataDir
	if dir == "" {
		dir = "(not recorded)"
	}
	if e.Lost {
		return fmt.Sprintf("namespace %q was taken over by the corral with data dir %s (--take-over): this one no longer manages it; stop it, or start it with another --namespace", e.Namespace, dir)
	}
	return fmt.Sprintf("namespace %q belongs to the corral with data dir %s: give this one another --namespace, or take the namespace over with --take-over (CORRAL_TAKE_OVER=true), which makes that corral's containers this one's and stops that corral managing them", e.Namespace, dir)
}

// owner is a store's identity and the stores it took over from.
type owner struct {
	id, dataDir string
	adopted     map[string]bool
}

// ownerOf is st's identity; the zero owner (owning only unlabelled
// objects, labelling nothing) without a store.
func ownerOf(st *store.Store) (owner, error) {
	if st == nil {
		return owner{}, nil
	}
	ids, err := st.AdoptedOwners()
	if err != nil {
		return owner{}, err
	}
	dir, err := filepath.Abs(filepath.Dir(st.Path()))
	if err != nil {
		return owner{}, fmt.Errorf("data dir: %w", err)
	}
	o := owner{id: st.ID(), dataDir: dir, adopted: map[string]bool{}}
	for _, id := range ids {
		o.adopted[id] = true
	}
	return o, nil
}

// mine reports whether an object with this owner label is ours.
func (o owner) mine(label string) bool {
	return label == "" || label == o.id || o.adopted[label]
}

// labels returns l with the owner's labels added.
func (o owner) labels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l)+2)
	for k, v := range l {
		out[k] = v
	}
	if o.id != "" {
		out[LabelOwner] = o.id
		out[LabelDataDir] = o.dataDir
	}
	return out
}

// claim makes o the owner of cfg's namespace and returns it (with the
// owners it took over from), or returns *OwnerError when another store
// owns the namespace and takeOver is not set.
func claim(ctx context.Context, d docker, cfg Config, o owner, takeOver bool, log *slog.Logger) (owner, error) {
	name := cfg.ClaimName()
	labels, found, err := d.VolumeLabels(ctx, name)
	if err != nil {
		return o, err
	}
	if found && labels[LabelOwner] == o.id {
		if labels[LabelDataDir] == o.dataDir {
			return o, nil
		}
		// The same store in another place: a data dir that moved, or a
		// copy restored beside it. The record follows this one.
		log.Warn("this store owned the namespace from another data dir; it is recorded here now",
			"namespace", cfg.Namespace, "was", labels[LabelDataDir], "now", o.dataDir)
		if err := d.RemoveVolume(ctx, name); err != nil {
			return o, err
		}
		return o, makeClaim(ctx, d, cfg, o)
	}
	// Whose the namespace is: the record's owner, or without a record any
	// other owner's label on what is there.
	others, dirs, err := otherOwners(ctx, d, cfg, o)
	if err != nil {
		return o, err
	}
	holder := ""
	if found {
		holder = labels[LabelOwner]
		dirs[holder] = labels[LabelDataDir]
		if !slices.Contains(others, holder) {
			others = append([]string{holder}, others...)
		}
	}
	if len(others) > 0 && !takeOver {
		first := others[0]
		if found {
			first = holder
		}
		return o, &OwnerError{Namespace: cfg.Namespace, DataDir: dirs[first]}
	}
	if len(others) > 0 {
		var from []string
		for _, id := range others {
			from = append(from, dirs[id])
		}
		log.Warn("taking the namespace over: the containers of the corral(s) that owned it are this one's now",
			"namespace", cfg.Namespace, "from_data_dirs", from)
		if cfg.Store != nil {
			if err := cfg.Store.AdoptOwners(others...); err != nil {
				return o, err
			}
		}
		adopted := map[string]bool{}
		for id := range o.adopted {
			adopted[id] = true
		}
		for _, id := range others {
			adopted[id] = true
		}
		o.adopted = adopted
	}
	if found {
		if err := d.RemoveVolume(ctx, name); err != nil {
			return o, err
		}
	}
	return o, makeClaim(ctx, d, cfg, o)
}

// makeClaim records o as the owner. Two corrals making it at once both
// succeed (Docker keeps the first); the one whose labels did not stick
// is refused.
func makeClaim(ctx context.Context, d docker, cfg Config, o owner) error {
	name := cfg.ClaimName()
	l := o.labels(map[string]string{LabelManaged: "true", LabelNamespace: cfg.Namespace, LabelRole: roleClaim})
	if err := d.EnsureVolume(ctx, name, l); err != nil {
		return err
	}
	got, found, err := d.VolumeLabels(ctx, name)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("volume %s vanished as it was made", name)
	}
	if got[LabelOwner] != o.id {
		return &OwnerError{Namespace: cfg.Namespace, DataDir: got[LabelDataDir]}
	}
	return nil
}

// otherOwners lists the owner labels on the namespace's containers,
// network and volumes that are not o's, with the data dir each names.
func otherOwners(ctx context.Context, d docker, cfg Config, o owner) ([]string, map[string]string, error) {
	var ids []string
	dirs := map[string]string{}
	add := func(l map[string]string) {
		if id := l[LabelOwner]; !o.mine(id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
			dirs[id] = l[LabelDataDir]
		}
	}
	ctrs, err := d.List(ctx, cfg.Namespace)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range ctrs {
		add(c.Labels)
	}
	if l, ok, err := d.NetworkLabels(ctx, cfg.NetworkName()); err != nil {
		return nil, nil, err
	} else if ok && l[LabelNamespace] == cfg.Namespace {
		add(l)
	}
	vols, err := d.Volumes(ctx, cfg.Namespace)
	if err != nil {
		return nil, nil, err
	}
	for _, v := range vols {
		if v.Name != cfg.ClaimName() {
			add(v.Labels)
		}
	}
	return ids, dirs, nil
}

// Claim makes cfg.Store the owner of cfg.Namespace (taking it over with
// cfg.TakeOver) before corral starts serving, so that a corral that
// would fight another over a namespace stops at once, with *OwnerError,
// having changed nothing. ok is false, with no error, when Docker does not
// answer: the engine claims the namespace when it connects.
func Claim(ctx context.Context, cfg Config) (ok bool, err error) {
	cfg.defaults()
	if cfg.Store == nil {
		return false, errors.New("engine: claiming a namespace needs the store")
	}
	d, err := newDocker(cfg.DockerHost, cfg.NetworkName())
	if err != nil {
		return false, err
	}
	defer d.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.Ping(pctx); err != nil {
		cfg.Logger.Info("docker does not answer yet: the namespace is claimed once it does", "err", err)
		return false, nil
	}
	o, err := ownerOf(cfg.Store)
	if err != nil {
		return false, err
	}
	if _, err := claim(ctx, d, cfg, o, cfg.TakeOver, cfg.Logger); err != nil {
		return false, err
	}
	return true, nil
}

// claimNamespace is the engine's claim at the start of each Docker
// session: a take-over is done at most once.
func (e *Engine) claimNamespace(ctx context.Context) error {
	if e.cfg.Store == nil {
		return nil
	}
	o, err := ownerOf(e.cfg.Store)
	if err != nil {
		return err
	}
	e.mu.Lock()
	takeOver := e.takeOver
	e.mu.Unlock()
	o, err = claim(ctx, e.docker, e.cfg, o, takeOver, e.log)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.own, e.takeOver = o, false
	e.mu.Unlock()
	return nil
}

// checkClaim is the check of every reconcile pass: the namespace is still
// ours. A record that is gone is made again; one that names another owner
// means this corral was taken over, and must stop.
func (e *Engine) checkClaim(ctx context.Context) error {
	if e.cfg.Store == nil {
		return nil
	}
	o := e.owner()
	if o.id == "" { // not claimed yet this run
		return e.claimNamespace(ctx)
	}
	labels, found, err := e.docker.VolumeLabels(ctx, e.cfg.ClaimName())
	if err != nil {
		return err
	}
	switch {
	case !found:
		e.log.Warn("the namespace's ownership record is gone (docker volume prune?): making it again", "volume", e.cfg.ClaimName())
		return e.claimNamespace(ctx)
	case labels[LabelOwner] != o.id:
		return &OwnerError{Namespace: e.cfg.Namespace, DataDir: labels[LabelDataDir], Lost: true}
	}
	return nil
}

func (e *Engine) owner() owner {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.own
}

// namespaceKey keeps the namespace corral serve last used, so corral down
// finds it without being told.
const namespaceKey = "namespace"

// RecordNamespace stores the namespace corral serves.
func RecordNamespace(st *store.Store, namespace string) error {
	return st.PutSettings(map[string]any{namespaceKey: namespace})
}

// RecordedNamespace is the namespace corral last served with st, or "".
func RecordedNamespace(st *store.Store) (string, error) {
	var ns string
	if err := st.Setting(namespaceKey, &ns); err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	return ns, nil
}
