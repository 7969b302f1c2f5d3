package datasets

import (
	"context"
	"fmt"
	"time"

	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/dustin/go-humanize"
)

// WorkerOptions tune the validation worker.
type WorkerOptions struct {
	Poll  time.Duration // how often to look for work when not woken
	Lease time.Duration // a crashed worker's dataset is picked up after this
	Sweep time.Duration // how often to retry pending object deletions
}

// DefaultWorkerOptions are the production settings.
var DefaultWorkerOptions = WorkerOptions{Poll: 2 * time.Second, Lease: 2 * time.Minute, Sweep: 5 * time.Minute}

// Worker validates confirmed datasets. Several workers (replicas) can run:
// each dataset is leased, and a lease that is not renewed (the server
// stopped mid-validation) expires, so the dataset is validated again.
func (s *Service) Worker(o WorkerOptions) func(ctx context.Context) {
	return func(ctx context.Context) {
		sys := store.AsSystem(ctx)
		poll := time.NewTicker(o.Poll)
		sweep := time.NewTicker(o.Sweep)
		defer poll.Stop()
		defer sweep.Stop()
		s.sweepDeletes(sys)
		for {
			for s.validateNext(sys, o.Lease) {
			}
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-poll.C:
			case <-sweep.C:
				s.sweepDeletes(sys)
			}
		}
	}
}

// validateNext validates one dataset; it reports whether it found one.
func (s *Service) validateNext(ctx context.Context, lease time.Duration) bool {
	d, ok, err := s.Store.DatasetClaimValidation(ctx, s.Now().UTC(), lease)
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Error("claim validation", "err", err)
		}
		return false
	}
	if !ok {
		return false
	}
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.renewLease(vctx, d.ID, lease)
	start := time.Now()
	v, err := s.validate(vctx, d)
	if err != nil {
		// Storage or context trouble: leave the lease to expire and retry.
		if ctx.Err() == nil {
			s.Log.Error("validation interrupted; will retry", "dataset", d.ID, "attempt", d.ValidationAttempts, "err", err)
		}
		return false
	}
	v.Notification = notification(d, v)
	saved, err := s.Store.DatasetSaveValidation(ctx, d.ID, v)
	if err != nil || !saved {
		if err != nil {
			s.Log.Error("save validation", "dataset", d.ID, "err", err)
		}
		return err == nil
	}
	s.Log.Info("dataset validated", "dataset", d.ID, "status", v.Status, "errors", v.ErrorCount, "bytes", d.FileSize, "duration", time.Since(start))
	return true
}

func (s *Service) renewLease(ctx context.Context, id string, lease time.Duration) {
	t := time.NewTicker(lease / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Store.DatasetExtendValidation(ctx, id, s.Now().UTC().Add(lease)); err != nil && ctx.Err() == nil {
				s.Log.Warn("renew validation lease", "dataset", id, "err", err)
			}
		}
	}
}

func (s *Service) validate(ctx context.Context, d store.Dataset) (store.DatasetValidation, error) {
	rc, err := s.Storage.Open(ctx, storage.BucketDatasets, d.StoragePath)
	if err != nil {
		return store.DatasetValidation{}, fmt.Errorf("open object: %w", err)
	}
	defer rc.Close()
	res, err := validate.Validate(ctx, rc, validate.Options{Format: d.Format})
	if err != nil {
		return store.DatasetValidation{}, err
	}
	return toValidation(res, s.Now().UTC()), nil
}

func toValidation(res *validate.Result, at time.Time) store.DatasetValidation {
	errs, warns := res.Errors, res.Warnings
	if errs == nil {
		errs = []validate.Issue{}
	}
	if warns == nil {
		warns = []validate.Issue{}
	}
	v := store.DatasetValidation{Status: store.DatasetError, Format: res.Format, TrainingReady: res.TrainingReady,
		TotalTrainingPairs: res.Stats.TrainingPairs, TotalValidationPairs: res.Stats.ValidationPairs, TotalTokens: res.Stats.TotalTokens,
		AvgTurns: res.Stats.AvgTurnsPerConversation, AvgTokensPerTurn: res.Stats.AvgTokensPerTurn,
		Errors: errs, Warnings: warns, ErrorCount: res.ErrorCount, WarningCount: res.WarningCount,
		Statistics: res.Stats, Sample: res.Sample, TokenProfile: res.TokenProfile, At: at}
	if res.TrainingReady {
		v.Status = store.DatasetReady
	}
	return v
}

// notification tells the owner how validation went.
func notification(d store.Dataset, v store.DatasetValidation) *store.NotificationCreateParams {
	p := &store.NotificationCreateParams{UserID: d.UserID, ActionURL: "/datasets/" + d.ID,
		Metadata: notifydoc.Dataset(d.ID, v.ErrorCount, v.WarningCount)}
	if v.Status == store.DatasetReady {
		p.Type, p.Priority, p.Title = "dataset_ready", "medium", "Dataset ready: "+d.Name
		p.Message = fmt.Sprintf("%s training and %s validation examples, about %s tokens. Ready to train.",
			humanize.Comma(int64(v.TotalTrainingPairs)), humanize.Comma(int64(v.TotalValidationPairs)), humanize.Comma(int64(v.TotalTokens)))
	} else {
		p.Type, p.Priority, p.Title = "dataset_error", "high", "Dataset has problems: "+d.Name
		noun := "errors"
		if v.ErrorCount == 1 {
			noun = "error"
		}
		p.Message = fmt.Sprintf("Validation found %s %s. Open the dataset to see each one with its line and a suggested fix.", humanize.Comma(int64(v.ErrorCount)), noun)
		if v.ErrorCount == 0 {
			p.Message = "The file has no trainable examples (pairs with a target response)."
		}
	}
	return p
}

// sweepDeletes retries object removal for deleted datasets.
func (s *Service) sweepDeletes(ctx context.Context) {
	if _, err := s.SweepDeletes(ctx, s.Now().UTC()); err != nil && ctx.Err() == nil {
		s.Log.Warn("pending deletes", "err", err)
	}
}

// SweepDeletes removes the objects of deleted datasets that are still
// stored, as of now, and reports how many it removed. Without an upload
// guard an object (a tombstone) is kept until uploadWindow after the
// deletion, when no upload URL can write it any more.
func (s *Service) SweepDeletes(ctx context.Context, now time.Time) (int, error) {
	list, err := s.Store.DatasetPendingObjectDeletes(ctx, 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range list {
		if !s.UploadsGuarded && d.DeletedAt != nil && now.Before(d.DeletedAt.Add(uploadWindow)) {
			continue
		}
		if err := s.Storage.Delete(ctx, storage.BucketDatasets, d.StoragePath); err != nil {
			s.Log.Warn("dataset object delete failed", "dataset", d.ID, "err", err)
			continue
		}
		if err := s.Store.DatasetMarkObjectDeleted(ctx, d.ID, now); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
