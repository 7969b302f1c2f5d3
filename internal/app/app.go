// Package app assembles a running BrightRun from a Config: store, storage,
// auth, UI, HTTP handler and background workers. cmd/brightrun and the
// end-to-end tests both use it.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/agentwork"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/config"
	"github.com/brightrun/brightrun/internal/costs"
	"github.com/brightrun/brightrun/internal/datasets"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/launchers"
	"github.com/brightrun/brightrun/internal/outbound"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/postgres"
	"github.com/brightrun/brightrun/internal/store/sqlite"
	"github.com/brightrun/brightrun/internal/ui"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// App is a configured BrightRun.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Store   store.Store
	Storage storage.Storage
	Secret  []byte
	Handler http.Handler
	// UserRoutes are the routes that act for a signed-in user.
	UserRoutes []string
	Now        func() time.Time
	// Datasets is the dataset service; DatasetWorker overrides its worker
	// settings (tests shorten the lease).
	Datasets      *datasets.Service
	DatasetWorker *datasets.WorkerOptions
	// Agents is the agent protocol service; AgentOptions override its leases.
	Agents *agentapi.Service
	Jobs   *jobs.Service // the job lifecycle (state machine, billing, notifications)
	Costs  *costs.Service
	// Launchers is the launcher reconciler (nil without BRIGHTRUN_LAUNCHERS).
	Launchers *launchers.Service
	// Outbound sends webhooks and emails; OutboundEvery is its worker period.
	Outbound      *outbound.Service
	OutboundEvery time.Duration
	AgentOptions  *agentapi.Options
	// Inference is the inference broker and service; InferenceOptions
	// override its timeouts.
	Inference        *inference.Service
	InferenceOptions *inference.BrokerOptions
	// Work is agent work that is not a training job (exact preflights);
	// WorkOptions override its polling and leases.
	Work        *agentwork.Service
	WorkOptions *agentwork.Options
	// HostCPUBF16 reports whether this machine's CPU has bf16 matrix units
	// (the catalog's cpu_bf16_weights_from_host options); nil: detect it.
	HostCPUBF16 func() bool

	workers []func(ctx context.Context)
}

// OpenStore opens the configured database and migrates it.
func OpenStore(ctx context.Context, c config.Config) (store.Store, error) {
	if c.Engine() == "postgres" {
		return postgres.Open(ctx, c.DatabaseURL)
	}
	return sqlite.Open(ctx, c.SQLitePath())
}

// LoadSecret reads the data dir's signing secret, creating it (0600) on
// first run.
func LoadSecret(dataDir string) ([]byte, error) {
	p := filepath.Join(dataDir, "secret.key")
	b, err := os.ReadFile(p)
	if err == nil {
		s, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(s) < 32 {
			return nil, fmt.Errorf("%s is corrupt: delete it to generate a new one (signed URLs in flight stop working)", p)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("BRIGHTRUN_DATA_DIR: cannot create %s: %w", dataDir, err)
	}
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return LoadSecret(dataDir)
		}
		return nil, err
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(s) + "\n"); err != nil {
		return nil, err
	}
	return s, f.Sync()
}

// NewLogger builds the slog logger the config asks for.
func NewLogger(c config.Config, w *os.File) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Options adjust an app for tests.
type Options struct {
	DatasetWorker *datasets.WorkerOptions
	AgentOptions  *agentapi.Options
	// InferenceOptions override the inference broker's timeouts.
	InferenceOptions *inference.BrokerOptions
	// WorkOptions override the agent-work queue's polling and leases.
	WorkOptions *agentwork.Options
	// OutboundEvery is the outbound notification worker's period: 0 means
	// 5 s, negative means no worker (tests call Outbound.Tick themselves).
	OutboundEvery time.Duration
}

// New assembles the app.
func New(ctx context.Context, c config.Config, log *slog.Logger) (*App, error) {
	return NewWith(ctx, c, log, Options{})
}

// NewWith assembles the app with options.
func NewWith(ctx context.Context, c config.Config, log *slog.Logger, o Options) (*App, error) {
	secret, err := LoadSecret(c.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, c)
	if err != nil {
		return nil, err
	}
	a := &App{Config: c, Log: log, Store: st, Secret: secret, Now: time.Now, DatasetWorker: o.DatasetWorker, AgentOptions: o.AgentOptions, InferenceOptions: o.InferenceOptions, WorkOptions: o.WorkOptions, OutboundEvery: o.OutboundEvery}
	if err := a.build(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context) error {
	c := a.Config
	objects, objectsHandler, err := openStorage(ctx, c, a.Secret)
	if err != nil {
		return err
	}
	a.Storage = objects
	renderer, err := ui.New(a.Log)
	if err != nil {
		return err
	}
	errs := &httpx.Errors{Log: a.Log, Page: renderer.ErrorPage}
	local := auth.NewLocal(a.Store)
	authn := &auth.Authenticator{Mode: c.Auth, Store: a.Store, Local: local, Errors: errs, SecureCookies: c.SecureCookies, Now: a.Now}
	if c.Auth == "supabase" {
		sb, err := auth.NewSupabase(ctx, c.SupabaseURL, c.SupabaseJWTSecret, c.SupabaseJWKSURL)
		if err != nil {
			return err
		}
		authn.Supabase = sb
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	deps := &server.Deps{Config: c, Log: a.Log, Store: a.Store, Auth: authn, Local: local, UI: renderer, Errors: errs, Registry: reg, Now: a.Now}
	mounts, workers, err := a.domains(ctx, deps)
	if err != nil {
		return err
	}
	if objectsHandler != nil {
		mounts = append(mounts, func(m *server.Mux) { m.Handle("/storage/v1/", objectsHandler) })
	}
	deps.Mounts = mounts
	a.workers = append(a.workers, workers...)
	a.workers = append(a.workers, wireStorage(objects, a.Datasets, a.Work, a.Log)...)
	a.workers = append(a.workers, a.sessionSweeper)
	a.Handler, a.UserRoutes = server.Build(deps)
	return nil
}

// sessionSweeper deletes expired sessions hourly.
func (a *App) sessionSweeper(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := a.Store.SessionDeleteExpired(store.AsSystem(ctx), a.Now().UTC()); err != nil && ctx.Err() == nil {
			a.Log.Warn("session sweep failed", "err", err)
		} else if n > 0 {
			a.Log.Info("expired sessions removed", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunWorkers runs the background workers until ctx ends.
func (a *App) RunWorkers(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, w := range a.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w(ctx) }()
	}
	return &wg
}

// Close releases the store and storage.
func (a *App) Close() error {
	if c, ok := a.Storage.(interface{ Close() error }); ok {
		_ = c.Close()
	}
	return a.Store.Close()
}
