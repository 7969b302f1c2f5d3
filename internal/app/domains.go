package app

import (
	"context"

	"github.com/brightrun/brightrun/internal/datasets"
	"github.com/brightrun/brightrun/internal/notify"
	"github.com/brightrun/brightrun/internal/server"
)

// domains builds the domain packages and returns their route mounts and
// background workers.
func (a *App) domains(ctx context.Context, d *server.Deps) ([]func(*server.Mux), []func(context.Context), error) {
	ds := datasets.NewService(a.Store, a.Storage, a.Log, a.Now)
	a.Datasets = ds
	dh := &datasets.Handlers{Svc: ds, UI: d.UI}
	nh := &notify.Handlers{Store: a.Store, UI: d.UI}
	opts := datasets.DefaultWorkerOptions
	if a.DatasetWorker != nil {
		opts = *a.DatasetWorker
	}
	return []func(*server.Mux){dh.Mount, nh.Mount}, []func(context.Context){ds.Worker(opts)}, nil
}
