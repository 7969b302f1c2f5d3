-- Dataset validation details beyond the spec's columns, and the bookkeeping
-- that makes validation restart-safe and object deletion retryable.

-- +goose Up
ALTER TABLE datasets
  ADD COLUMN statistics JSONB,
  ADD COLUMN validation_warnings JSONB,
  ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN warning_count INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN validation_attempts INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN validation_lease_until TIMESTAMPTZ,
  ADD COLUMN storage_deleted_at TIMESTAMPTZ;
CREATE INDEX idx_datasets_validating ON datasets(validation_lease_until) WHERE status = 'validating' AND deleted_at IS NULL;

-- +goose Down
DROP INDEX IF EXISTS idx_datasets_validating;
ALTER TABLE datasets DROP COLUMN statistics, DROP COLUMN validation_warnings, DROP COLUMN error_count,
  DROP COLUMN warning_count, DROP COLUMN validation_attempts, DROP COLUMN validation_lease_until, DROP COLUMN storage_deleted_at;
