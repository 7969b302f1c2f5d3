package openai

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/google/uuid"
)

// FineTuning serves /v1/fine_tuning on the training and jobs services.
type FineTuning struct {
	Store    store.Store
	Training *training.Service
	Jobs     *jobs.Service
	Catalog  *catalog.Catalog
	Files    *Files
	Log      *slog.Logger
	Now      func() time.Time
}

func (s *FineTuning) now() time.Time { return s.Now().UTC() }

// Create validates the request and creates the fine-tuning job: with its
// training job at once when the file is ready, else in validating_files
// until the file's validation ends (then the worker creates the training
// job, or fails the fine-tuning job naming the file's first bad line). A
// file that already failed validation is a 400 naming its first bad line.
func (s *FineTuning) Create(ctx context.Context, userID string, r CreateJobRequest) (Job, error) {
	p, err := plan(s.Catalog, &r)
	if err != nil {
		return Job{}, err
	}
	d, err := s.file(ctx, userID, "training_file", r.TrainingFile)
	if err != nil {
		return Job{}, err
	}
	var val *store.Dataset
	if r.ValidationFile != nil && *r.ValidationFile != "" {
		v, err := s.file(ctx, userID, "validation_file", *r.ValidationFile)
		if err != nil {
			return Job{}, err
		}
		val, p.Hyper.ValidationDatasetID = &v, v.ID
	}
	if p, err = s.pickGPU(ctx, userID, p); err != nil {
		return Job{}, err
	}
	seed := int64(42)
	if r.Seed != nil {
		seed = *r.Seed
	}
	f := store.FineTuneJob{ID: uuid.NewString(), UserID: userID, Model: p.Hyper.BaseModel, TrainingFile: d.ID, Suffix: r.Suffix, Seed: seed,
		Metadata: r.Metadata, Request: p, Status: store.FineTuneValidatingFiles, CreatedAt: s.now()}
	valReady := true
	if val != nil {
		f.ValidationFile, valReady = &val.ID, val.Status == store.DatasetReady && val.TrainingReady
	}
	switch {
	case d.Status == store.DatasetReady && d.TrainingReady && valReady:
		res, err := s.Training.Create(ctx, userID, trainingRequest(d.ID, p))
		if err != nil {
			return Job{}, err // budgets and memory: refused now, as on /api
		}
		f.Status, f.JobID = store.FineTuneCreated, &res.Job.ID
	}
	if f, err = s.Store.FineTuneCreate(ctx, f); err != nil {
		return Job{}, err
	}
	return s.view(ctx, f)
}

// file loads one of the user's files for param: unknown (or another
// user's) and already failed files are 400s naming param.
func (s *FineTuning) file(ctx context.Context, userID, param, id string) (store.Dataset, error) {
	d, err := s.Files.Get(ctx, userID, id)
	if apperr.Is(err, apperr.KindNotFound) {
		return d, apperr.Validation("file not found", map[string]string{param: fmt.Sprintf("no file %q: upload it with purpose fine-tune (GET /v1/files lists yours)", id)}).WithCode("invalid_" + param)
	}
	if err != nil {
		return d, err
	}
	if d.Status == store.DatasetError || (d.Status == store.DatasetReady && !d.TrainingReady) {
		// Known bad already: refused now, naming the line (a file still
		// validating fails the job in validating_files instead).
		return d, apperr.Validation("invalid file", map[string]string{param: FileID(d.ID) + " failed validation: " + fileProblem(d)}).WithCode("invalid_" + param)
	}
	return d, nil
}

func trainingRequest(datasetID string, p Plan) training.Request {
	h, _ := json.Marshal(p.Hyper)
	return training.Request{DatasetID: datasetID, PresetID: p.PresetID, Hyperparameters: h, GPUConfig: training.GPUConfig{GPUType: p.GPUType}}
}

// pickGPU chooses the GPU: the catalog's openai.gpu_type, else the
// cheapest GPU the job fits on (the CPU only for models marked local). An
// "auto" batch size starts at the preset's and is halved until the job
// fits; if even 1 does not, gradient checkpointing is switched on.
func (s *FineTuning) pickGPU(ctx context.Context, userID string, p Plan) (Plan, error) {
	model, _ := s.Catalog.Model(p.Hyper.BaseModel)
	var gpus []catalog.GPU
	if g, ok := s.Catalog.GPU(s.Catalog.OpenAI.GPUType); ok && s.Catalog.OpenAI.GPUType != "" {
		gpus = []catalog.GPU{g}
	} else {
		for _, g := range s.Catalog.GPUs {
			if !g.CPU || model.Local {
				gpus = append(gpus, g)
			}
		}
		slices.SortStableFunc(gpus, func(a, b catalog.GPU) int { return cmp.Compare(a.CostPerGPUHour, b.CostPerGPUHour) })
	}
	for _, g := range gpus {
		for _, ckpt := range []bool{p.Hyper.GradientCheckpointing, true} {
			try := p
			try.GPUType, try.Hyper.GradientCheckpointing = g.ID, ckpt
			for {
				est, err := s.Training.Estimate(ctx, userID, trainingRequest("", try))
				if err != nil {
					return p, renameHyper(err)
				}
				if est.Memory.Fits {
					try.BatchSize = try.Hyper.BatchSize
					return try, nil
				}
				if !try.BatchAuto || try.Hyper.BatchSize <= 1 {
					break
				}
				try.Hyper.BatchSize /= 2
			}
			if ckpt {
				break
			}
		}
	}
	return p, apperr.Validation("no GPU fits", map[string]string{"model": fmt.Sprintf("%s does not fit on any GPU this server offers with these hyperparameters: use a smaller batch_size (or \"auto\")", model.ID)})
}

// renameHyper words a training error's fields as /v1 parameters.
func renameHyper(err error) error {
	return renameFields(err, map[string]string{"hyperparameters.num_epochs": "hyperparameters.n_epochs", "hyperparameters.base_model": "model",
		"hyperparameters.batch_size": "hyperparameters.batch_size", "hyperparameters.learning_rate": "hyperparameters.learning_rate_multiplier"})
}

// get loads one of the user's fine-tuning jobs by its /v1 id.
func (s *FineTuning) get(ctx context.Context, userID, id string) (store.FineTuneJob, error) {
	ftID, ok := ParseJobID(id)
	if !ok {
		return store.FineTuneJob{}, apperr.NotFound("fine-tuning job " + id)
	}
	f, err := s.Store.FineTuneGet(ctx, userID, ftID)
	if apperr.Is(err, apperr.KindNotFound) {
		return f, apperr.NotFound("fine-tuning job " + id)
	}
	if err == nil && f.Status == store.FineTuneValidatingFiles {
		return s.advance(ctx, f)
	}
	return f, err
}

// Get returns one of the user's fine-tuning jobs.
func (s *FineTuning) Get(ctx context.Context, userID, id string) (Job, error) {
	f, err := s.get(ctx, userID, id)
	if err != nil {
		return Job{}, err
	}
	return s.view(ctx, f)
}

// JobListParams are GET /v1/fine_tuning/jobs's query.
type JobListParams struct {
	After    string
	Limit    int
	Metadata map[string]string
}

// List pages the user's fine-tuning jobs, newest first, keeping those whose
// metadata has every asked key and value.
func (s *FineTuning) List(ctx context.Context, userID string, p JobListParams) (List[Job], error) {
	out := List[Job]{Object: "list", Data: []Job{}}
	after := ""
	if p.After != "" {
		id, ok := ParseJobID(p.After)
		if !ok {
			return out, apperr.Validation("unknown cursor", map[string]string{"after": "pass the id (ftjob-…) of the last job of the previous page"})
		}
		after = id
	}
	var keep []store.FineTuneJob
	for len(keep) <= p.Limit {
		page, err := s.Store.FineTuneList(ctx, store.FineTuneListParams{UserID: userID, After: after, Limit: 100})
		if err != nil {
			return out, err
		}
		for _, f := range page {
			if matches(f.Metadata, p.Metadata) {
				keep = append(keep, f)
			}
		}
		if len(page) < 100 {
			break
		}
		after = page[len(page)-1].ID
	}
	out.HasMore = len(keep) > p.Limit
	keep = keep[:min(len(keep), p.Limit)]
	for _, f := range keep {
		if f.Status == store.FineTuneValidatingFiles {
			var err error
			if f, err = s.advance(ctx, f); err != nil {
				return out, err
			}
		}
		j, err := s.view(ctx, f)
		if err != nil {
			return out, err
		}
		out.Data = append(out.Data, j)
	}
	if n := len(out.Data); n > 0 {
		first, last := out.Data[0].ID, out.Data[n-1].ID
		out.FirstID, out.LastID = &first, &last
	}
	return out, nil
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Cancel cancels a job: one still validating its files at once, else
// through the jobs service (a queued job at once, a running one at its
// next step, a paused one at once with its run time billed).
func (s *FineTuning) Cancel(ctx context.Context, userID, id string) (Job, error) {
	return s.step(ctx, userID, id, "cancelled", s.Jobs.Cancel)
}

// Pause stops a job at its next checkpoint and releases its GPU.
func (s *FineTuning) Pause(ctx context.Context, userID, id string) (Job, error) {
	return s.step(ctx, userID, id, "", s.Jobs.Pause)
}

// Resume queues a paused job; it continues from its last checkpoint.
func (s *FineTuning) Resume(ctx context.Context, userID, id string) (Job, error) {
	return s.step(ctx, userID, id, "", s.Jobs.Resume)
}

// step applies a user's action. early is what a job still validating its
// files becomes ("" = the action needs a training job: 409).
func (s *FineTuning) step(ctx context.Context, userID, id, early string, fn func(ctx context.Context, userID, jobID string) (store.Job, error)) (Job, error) {
	f, err := s.get(ctx, userID, id)
	if err != nil {
		return Job{}, err
	}
	switch {
	case f.JobID != nil:
		if _, err := fn(ctx, userID, *f.JobID); err != nil {
			return Job{}, err
		}
	case f.Status == store.FineTuneValidatingFiles && early != "":
		if _, err := s.Store.FineTuneResolve(ctx, store.FineTuneResolve{ID: f.ID, Status: store.FineTuneCancelled, At: s.now()}); err != nil {
			return Job{}, err
		}
	case f.Status == store.FineTuneValidatingFiles:
		return Job{}, apperr.Conflict("the job is still validating its files: wait until it is queued or running")
	default:
		return Job{}, apperr.Conflict("the job is already %s", f.Status)
	}
	if f, err = s.Store.FineTuneGet(ctx, userID, f.ID); err != nil {
		return Job{}, err
	}
	return s.view(ctx, f)
}

// advance moves a job in validating_files on once its file's validation
// has ended: the training job is created, or the job fails naming the
// file's problem. It returns the row as it is now.
func (s *FineTuning) advance(ctx context.Context, f store.FineTuneJob) (store.FineTuneJob, error) {
	uctx := store.WithUser(ctx, f.UserID)
	files := []struct{ param, id string }{{"training_file", f.TrainingFile}}
	if f.ValidationFile != nil {
		files = append(files, struct{ param, id string }{"validation_file", *f.ValidationFile})
	}
	res := store.FineTuneResolve{ID: f.ID, At: s.now()}
	var d store.Dataset
	for _, file := range files {
		ds, err := s.Store.DatasetGet(uctx, f.UserID, file.id)
		switch {
		case apperr.Is(err, apperr.KindNotFound):
			res.Status, res.ErrorCode, res.Param, res.ErrorMessage = store.FineTuneFailed, "invalid_"+file.param, file.param, file.param+" "+FileID(file.id)+" was deleted before the job started"
		case err != nil:
			return f, err
		case ds.Status == store.DatasetUploading || ds.Status == store.DatasetValidating:
			return f, nil
		case ds.Status == store.DatasetError || !ds.TrainingReady:
			res.Status, res.ErrorCode, res.Param, res.ErrorMessage = store.FineTuneFailed, "invalid_"+file.param, file.param, file.param+" "+FileID(ds.ID)+": "+fileProblem(ds)
		}
		if res.Status != "" {
			break
		}
		if file.param == "training_file" {
			d = ds
		}
	}
	switch {
	case res.Status != "":
	default:
		created, err := s.Training.Create(uctx, f.UserID, trainingRequest(d.ID, f.Request))
		if ae, ok := apperr.As(err); ok && ae.Kind != apperr.KindInternal {
			res.Status, res.ErrorCode, res.ErrorMessage = store.FineTuneFailed, codeOf(ae), ae.Message
		} else if err != nil {
			return f, err
		} else {
			res.Status, res.JobID = store.FineTuneCreated, &created.Job.ID
		}
	}
	ok, err := s.Store.FineTuneResolve(ctx, res)
	if err != nil {
		return f, err
	}
	if ok && res.Status == store.FineTuneFailed {
		f.Status = res.Status
		s.notifyFailed(ctx, f)
	}
	return s.Store.FineTuneGet(uctx, f.UserID, f.ID)
}

func codeOf(ae *apperr.Error) string {
	if ae.Code != "" {
		return ae.Code
	}
	if ae.Kind == apperr.KindConflict {
		return "budget_exceeded"
	}
	return "invalid_request"
}

// notifyFailed writes the job_failed notification of a job that failed
// before it had a training job (so webhooks and the bell hear of it too).
func (s *FineTuning) notifyFailed(ctx context.Context, f store.FineTuneJob) {
	g, err := s.Store.FineTuneGet(store.WithUser(ctx, f.UserID), f.UserID, f.ID)
	if err != nil {
		s.Log.Warn("fine-tuning job failure notice", "job", f.ID, "err", err)
		return
	}
	msg := "the training file failed validation"
	if g.ErrorMessage != nil {
		msg = *g.ErrorMessage
	}
	if _, err := s.Store.NotificationCreate(store.AsSystem(ctx), store.NotificationCreateParams{UserID: f.UserID, Type: "job_failed", Priority: "high",
		Title: "Fine-tuning job failed: " + JobID(f.ID), Message: msg, ActionURL: "/datasets/" + f.TrainingFile,
		Metadata: &notifydoc.Metadata{FineTuningJobID: JobID(f.ID)}, At: s.now()}); err != nil {
		s.Log.Warn("fine-tuning job failure notice", "job", f.ID, "err", err)
	}
}

// Worker advances jobs waiting for their files every interval (reads
// advance them too, so a client polling retrieve never waits for it).
func (s *FineTuning) Worker(every time.Duration) func(ctx context.Context) {
	return func(ctx context.Context) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			list, err := s.Store.FineTunePending(store.AsSystem(ctx), 100)
			if err != nil && ctx.Err() == nil {
				s.Log.Warn("fine-tuning jobs waiting for files", "err", err)
			}
			for _, f := range list {
				if _, err := s.advance(ctx, f); err != nil && ctx.Err() == nil {
					s.Log.Warn("fine-tuning job", "job", f.ID, "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
}
