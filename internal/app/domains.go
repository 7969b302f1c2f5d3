package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/agents"
	"github.com/brightrun/brightrun/internal/agentwork"
	"github.com/brightrun/brightrun/internal/config"
	"github.com/brightrun/brightrun/internal/costs"
	"github.com/brightrun/brightrun/internal/datasets"
	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/launchers"
	"github.com/brightrun/brightrun/internal/models"
	"github.com/brightrun/brightrun/internal/notify"
	"github.com/brightrun/brightrun/internal/openai"
	"github.com/brightrun/brightrun/internal/outbound"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/training"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/brightrun/brightrun/internal/training/estimate"
	"github.com/prometheus/client_golang/prometheus"
)

// domains builds the domain packages and returns their route mounts and
// background workers.
func (a *App) domains(ctx context.Context, d *server.Deps) ([]func(*server.Mux), []func(context.Context), error) {
	ds := datasets.NewService(a.Store, a.Storage, a.Log, a.Now)
	a.Datasets = ds
	dh := &datasets.Handlers{Svc: ds, UI: d.UI}
	nh := &notify.Handlers{Svc: &notify.Service{Store: a.Store}, UI: d.UI}
	cat, err := catalog.Load(a.Config.Catalog)
	if err != nil {
		return nil, nil, fmt.Errorf("BRIGHTRUN_CATALOG: %w", err)
	}
	hostBF16 := a.HostCPUBF16
	if hostBF16 == nil {
		hostBF16 = hostCPUBF16
	}
	cat.ApplyHostCPU(hostBF16())
	js := &jobs.Service{Store: a.Store, Now: a.Now}
	a.Jobs = js
	fleet := &agents.Service{Store: a.Store, Now: a.Now}
	wo := agentwork.DefaultOptions
	if a.WorkOptions != nil {
		wo = *a.WorkOptions
	}
	work := &agentwork.Service{Store: a.Store, Storage: a.Storage, Catalog: cat, Log: a.Log, Now: a.Now, Opts: wo}
	a.Work = work
	wh := &agentwork.Handlers{Svc: work, Errors: d.Errors}
	ts := &training.Service{Store: a.Store, Jobs: js, Catalog: cat, Log: a.Log, Now: a.Now, Agents: fleet, Exact: work}
	th := &training.Handlers{Svc: ts, UI: d.UI}
	opts := datasets.DefaultWorkerOptions
	if a.DatasetWorker != nil {
		opts = *a.DatasetWorker
	}
	ao := agentapi.DefaultOptions
	if a.AgentOptions != nil {
		ao = *a.AgentOptions
	}
	as := &agentapi.Service{Store: a.Store, Jobs: js, Storage: a.Storage, Catalog: cat, Log: a.Log, Now: a.Now, Opts: ao, Secret: a.Secret}
	a.Agents = as
	ah := &agentapi.Handlers{Svc: as, Errors: d.Errors}
	workers := []func(context.Context){ds.Worker(opts), as.LeaseWorker}
	lw, err := a.launchers(ctx, cat)
	if err != nil {
		return nil, nil, err
	}
	if lw != nil {
		workers = append(workers, lw)
	}
	lh := &launchers.Handlers{Store: a.Store, Now: a.Now}
	if a.Config.LocalAgent {
		workers = append(workers, a.localAgent(as))
	}
	io := inference.DefaultBrokerOptions
	if a.InferenceOptions != nil {
		io = *a.InferenceOptions
	}
	inf := inference.NewService(a.Store, a.Storage, cat, a.Log, a.Now, a.Config.PublicURL, io)
	a.Inference = inf
	d.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "brightrun_inference_queued",
		Help: "Chat requests waiting for an agent (this replica)."}, func() float64 { return float64(inf.Broker.Queued()) }))
	ih := &inference.AgentHandlers{Svc: inf, Errors: d.Errors}
	ph := &inference.PlaygroundHandlers{Svc: inf, Errors: d.Errors, UI: d.UI}
	vh := &openai.Handlers{Inference: inf, Store: a.Store, Errors: d.Errors, Now: a.Now}
	mh := &models.Handlers{Svc: &models.Service{Store: a.Store, Storage: a.Storage, Log: a.Log, Now: a.Now}, UI: d.UI, PublicURL: a.Config.PublicURL}
	cs := &costs.Service{Store: a.Store, Log: a.Log, Now: a.Now, StorageGBMonth: estimate.DefaultStorageGBMonth}
	a.Costs = cs
	ch := &costs.Handlers{Svc: cs, UI: d.UI}
	workers = append(workers, cs.Worker(time.Minute))
	c := a.Config
	ob := &outbound.Service{Store: a.Store, Log: a.Log, Now: a.Now, Policy: webhookPolicy(c), PublicURL: c.PublicURL,
		SMTP: outbound.SMTPConfig{Addr: c.SMTPAddr, From: c.SMTPFrom, Username: c.SMTPUsername, Password: c.SMTPPassword}}
	a.Outbound = ob
	oh := &outbound.Handlers{Svc: ob, UI: d.UI}
	switch every := a.OutboundEvery; {
	case every == 0:
		workers = append(workers, ob.Worker(5*time.Second))
	case every > 0:
		workers = append(workers, ob.Worker(every))
	}
	agh := &agents.Handlers{Svc: fleet, Catalog: cat, UI: d.UI, PublicURL: c.PublicURL}
	ftd := filepath.Join(c.DataDir, "tmp", "v1-uploads")
	if err := os.MkdirAll(ftd, 0o700); err != nil {
		return nil, nil, fmt.Errorf("BRIGHTRUN_DATA_DIR: %w", err)
	}
	files := &openai.Files{Datasets: ds, Store: a.Store, Storage: a.Storage, TempDir: ftd}
	ft := &openai.FineTuning{Store: a.Store, Training: ts, Jobs: js, Catalog: cat, Files: files, Log: a.Log, Now: a.Now}
	fth := &openai.FineTuneHandlers{Files: files, FT: ft}
	vh.Checkpoints = ft
	ob.Events = ft
	workers = append(workers, ft.Worker(time.Second))
	return []func(*server.Mux){dh.Mount, nh.Mount, th.Mount, ah.Mount, mh.Mount, ch.Mount, oh.Mount, ih.Mount, wh.Mount, ph.Mount, vh.Mount, fth.MountFineTuning, agh.Mount, lh.Mount}, workers, nil
}

// webhookPolicy is the operator's choice of internal addresses webhooks may
// reach (the config was validated at start-up).
func webhookPolicy(c config.Config) outbound.Policy {
	cidrs, _ := c.WebhookCIDRs()
	return outbound.Policy{AllowPrivate: c.WebhookAllowPrivate, AllowCIDRs: cidrs}
}
