package app

import (
	"context"
	"fmt"

	"github.com/brightrun/brightrun/internal/launchers"
	"github.com/brightrun/brightrun/internal/launchers/kubernetes"
	"github.com/brightrun/brightrun/internal/launchers/slurm"
	"github.com/brightrun/brightrun/internal/training/catalog"
)

// launchers reads and validates BRIGHTRUN_LAUNCHERS at start-up, builds
// each configured launcher, and returns the reconciler's worker (nil when
// none is configured).
func (a *App) launchers(ctx context.Context, cat *catalog.Catalog) (func(context.Context), error) {
	fc, err := launchers.LoadConfig(a.Config.Launchers)
	if err != nil {
		return nil, err
	}
	if len(fc.Launchers) == 0 {
		return nil, nil
	}
	if err := fc.CheckGPUTypes(func(g string) bool {
		for _, x := range cat.GPUs {
			if x.GPUType == g {
				return true
			}
		}
		return false
	}); err != nil {
		return nil, err
	}
	built := map[string]launchers.Launcher{}
	for _, set := range fc.Launchers {
		switch set.Type {
		case "slurm":
			built[set.Name] = slurm.New(set)
		case "kubernetes":
			if err := kubernetes.Check(set); err != nil {
				return nil, err
			}
			client, err := kubernetes.NewClient(set.Kubernetes.Kubeconfig)
			if err != nil {
				return nil, fmt.Errorf("BRIGHTRUN_LAUNCHERS: launcher %s: %w", set.Name, err)
			}
			built[set.Name] = kubernetes.New(set, client)
		default:
			return nil, fmt.Errorf("BRIGHTRUN_LAUNCHERS: launcher %s: type %q is not built in", set.Name, set.Type)
		}
	}
	svc := &launchers.Service{Store: a.Store, Log: a.Log.With("component", "launchers"), Now: a.Now, Config: fc, Launchers: built, PublicURL: a.Config.PublicURL}
	a.Launchers = svc
	a.Log.Info("launchers configured", "count", len(built))
	return svc.Worker, nil
}
