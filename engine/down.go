package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// DownPlan is what Down removes, and what it leaves.
type DownPlan struct {
	Namespace  string
	Containers []string // the instances and the chat UI's containers
	Network    string   // empty: none of this store's
	Claim      string   // the ownership record; empty: not this store's
	Volumes    []string // removed: volumes was set
	Kept       []string // this store's volumes that stay: volumes was not set
	Foreign    []string // another corral's, left alone: "NAME (data dir DIR)"
}

// Empty reports whether there is nothing to remove.
func (p DownPlan) Empty() bool {
	return len(p.Containers) == 0 && p.Network == "" && p.Claim == "" && len(p.Volumes) == 0
}

// Down removes what cfg.Store owns in cfg.Namespace: the containers, the
// network and the ownership record, and with volumes set the volumes too
// (models, the chat UI's data). Another corral's objects stay. confirm,
// when not nil, sees the plan before anything is removed; its error stops
// Down with nothing changed. corral must not be running (the caller holds
// the store), or it would make everything again.
func Down(ctx context.Context, cfg Config, volumes bool, confirm func(DownPlan) error) (DownPlan, error) {
	cfg.defaults()
	d, err := newDocker(cfg.DockerHost, cfg.NetworkName())
	if err != nil {
		return DownPlan{}, err
	}
	defer d.Close()
	if err := d.Ping(ctx); err != nil {
		return DownPlan{}, fmt.Errorf("docker does not answer: %w", err)
	}
	return down(ctx, d, cfg, volumes, confirm)
}

func down(ctx context.Context, d docker, cfg Config, volumes bool, confirm func(DownPlan) error) (DownPlan, error) {
	plan, ids, err := planDown(ctx, d, cfg, volumes)
	if err != nil {
		return plan, err
	}
	if confirm != nil {
		if err := confirm(plan); err != nil {
			return plan, err
		}
	}
	var errs []error
	for i, name := range plan.Containers {
		cfg.Logger.Info("removing container", "container", name)
		if err := d.Remove(ctx, ids[i], cfg.StopTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if plan.Network != "" {
		if err := d.RemoveNetwork(ctx, plan.Network); err != nil {
			errs = append(errs, fmt.Errorf("%w (a container of another corral, or one not made by corral, may still be on it: docker network inspect %s)", err, plan.Network))
		}
	}
	for _, v := range plan.Volumes {
		if err := d.RemoveVolume(ctx, v); err != nil {
			errs = append(errs, err)
		}
	}
	// The record goes last: until everything else is gone, no other
	// corral takes the namespace without --take-over.
	if plan.Claim != "" && len(errs) == 0 {
		if err := d.RemoveVolume(ctx, plan.Claim); err != nil {
			errs = append(errs, err)
		}
	}
	return plan, errors.Join(errs...)
}

// planDown sorts the namespace's objects into this store's and the
// others'; ids are the IDs of plan.Containers.
func planDown(ctx context.Context, d docker, cfg Config, volumes bool) (DownPlan, []string, error) {
	plan := DownPlan{Namespace: cfg.Namespace}
	o, err := ownerOf(cfg.Store)
	if err != nil {
		return plan, nil, err
	}
	mine := o.mine
	claimLabels, claimed, err := d.VolumeLabels(ctx, cfg.ClaimName())
	if err != nil {
		return plan, nil, err
	}
	if claimed && cfg.Store != nil {
		if holder := claimLabels[LabelOwner]; holder == o.id {
			plan.Claim = cfg.ClaimName()
		} else {
			// Another corral holds the namespace (it took it over): what
			// has no owner label, or a taken-over one, is its now.
			mine = func(label string) bool { return label == o.id }
			plan.Foreign = append(plan.Foreign, fmt.Sprintf("ownership record %s (data dir %s)", cfg.ClaimName(), dirOf(claimLabels)))
		}
	}
	ctrs, err := d.List(ctx, cfg.Namespace)
	if err != nil {
		return plan, nil, err
	}
	sort.Slice(ctrs, func(i, j int) bool { return ctrs[i].Name < ctrs[j].Name })
	var ids []string
	for _, c := range ctrs {
		if !mine(c.Labels[LabelOwner]) {
			plan.Foreign = append(plan.Foreign, fmt.Sprintf("container %s (data dir %s)", c.Name, dirOf(c.Labels)))
			continue
		}
		plan.Containers = append(plan.Containers, c.Name)
		ids = append(ids, c.ID)
	}
	if l, ok, err := d.NetworkLabels(ctx, cfg.NetworkName()); err != nil {
		return plan, nil, err
	} else if ok && l[LabelNamespace] == cfg.Namespace {
		if mine(l[LabelOwner]) {
			plan.Network = cfg.NetworkName()
		} else {
			plan.Foreign = append(plan.Foreign, fmt.Sprintf("network %s (data dir %s)", cfg.NetworkName(), dirOf(l)))
		}
	}
	vols, err := d.Volumes(ctx, cfg.Namespace)
	if err != nil {
		return plan, nil, err
	}
	for _, v := range vols {
		switch {
		case v.Name == cfg.ClaimName():
		case !mine(v.Labels[LabelOwner]):
			plan.Foreign = append(plan.Foreign, fmt.Sprintf("volume %s (data dir %s)", v.Name, dirOf(v.Labels)))
		case volumes:
			plan.Volumes = append(plan.Volumes, v.Name)
		default:
			plan.Kept = append(plan.Kept, v.Name)
		}
	}
	return plan, ids, nil
}

func dirOf(labels map[string]string) string {
	if d := labels[LabelDataDir]; d != "" {
		return d
	}
	return "not recorded"
}
