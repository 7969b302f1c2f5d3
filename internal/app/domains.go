package app

import (
	"context"

	"github.com/brightrun/brightrun/internal/server"
)

// domains builds the domain packages (datasets, storage, …) and returns
// their route mounts and background workers.
func (a *App) domains(ctx context.Context, d *server.Deps) ([]func(*server.Mux), []func(context.Context), error) {
	return nil, nil, nil
}
