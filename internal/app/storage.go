package app

import (
	"context"
	"fmt"
	"github.com/brightrun/brightrun/internal/agentwork"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/brightrun/brightrun/internal/config"
	"github.com/brightrun/brightrun/internal/datasets"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/storage/local"
	"github.com/brightrun/brightrun/internal/storage/s3store"
)

// openStorage builds the configured backend. The local backend also returns
// the handler that serves its signed URLs (mounted at /storage/v1/).
func openStorage(ctx context.Context, c config.Config, secret []byte) (storage.Storage, http.Handler, error) {
	if c.Storage == "s3" {
		names := map[string]string{}
		for _, b := range storage.Buckets() {
			names[b] = c.S3BucketPrefix + b
		}
		st, err := s3store.New(ctx, s3store.Options{Endpoint: c.S3Endpoint, Region: c.S3Region, AccessKeyID: c.S3AccessKeyID,
			SecretAccessKey: c.S3SecretAccessKey, UsePathStyle: c.S3PathStyle, BucketNames: names})
		if err != nil {
			return nil, nil, fmt.Errorf("BRIGHTRUN_S3_*: %w", err)
		}
		if err := st.CheckBuckets(ctx); err != nil {
			return nil, nil, fmt.Errorf("S3 buckets (create %s and %s, or set BRIGHTRUN_S3_BUCKET_PREFIX): %w",
				names[storage.BucketDatasets], names[storage.BucketModels], err)
		}
		return st, nil, nil
	}
	st, err := local.New(local.Options{Root: filepath.Join(c.DataDir, "storage"), BaseURL: c.PublicURL, Secret: secret})
	if err != nil {
		return nil, nil, fmt.Errorf("local storage in BRIGHTRUN_DATA_DIR: %w", err)
	}
	return st, st.Handler(), nil
}

// Stale in-progress upload files (a crash mid-upload) are swept at start-up
// and then every tempSweepEvery, once older than tempMaxAge.
const (
	tempMaxAge     = time.Hour
	tempSweepEvery = 15 * time.Minute
)

// wireStorage connects the storage backend to the domains that issue its
// signed URLs and returns its background workers. On the local backend the
// datasets domain guards uploads to its bucket (a confirmed or deleted
// dataset's upload URL stops working), agent work guards export uploads to
// the models bucket (a deleted export's URL stops working), and a worker sweeps stale temporary
// upload files. S3 needs neither: its dataset upload URLs are write-once and
// the S3 service owns partial uploads.
func wireStorage(objects storage.Storage, ds *datasets.Service, work *agentwork.Service, log *slog.Logger) []func(context.Context) {
	if g, ok := objects.(storage.UploadGuarder); ok {
		g.GuardUploads(storage.BucketDatasets, ds.UploadAllowed)
		ds.UploadsGuarded = true
		// An export's upload URL stops working once the export is deleted or its agent lost it.
		g.GuardUploads(storage.BucketModels, work.UploadAllowed)
	}
	ls, ok := objects.(*local.Store)
	if !ok {
		return nil
	}
	sweep := func() {
		if n, err := ls.SweepTemp(tempMaxAge); err != nil {
			log.Warn("stale upload file sweep failed", "err", err)
		} else if n > 0 {
			log.Info("stale upload files removed", "count", n)
		}
	}
	sweep() // at start-up, before serving
	return []func(context.Context){func(ctx context.Context) {
		t := time.NewTicker(tempSweepEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sweep()
			}
		}
	}}
}
