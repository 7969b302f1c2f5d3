package app

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/brightrun/brightrun/internal/config"
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
