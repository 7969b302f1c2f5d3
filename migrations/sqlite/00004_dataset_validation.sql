-- +goose Up
ALTER TABLE datasets ADD COLUMN statistics TEXT;
ALTER TABLE datasets ADD COLUMN validation_warnings TEXT;
ALTER TABLE datasets ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN warning_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN validation_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN validation_lease_until TEXT;
ALTER TABLE datasets ADD COLUMN storage_deleted_at TEXT;
CREATE INDEX idx_datasets_validating ON datasets(validation_lease_until) WHERE status = 'validating' AND deleted_at IS NULL;

-- +goose Down
DROP INDEX idx_datasets_validating;
ALTER TABLE datasets DROP COLUMN statistics;
ALTER TABLE datasets DROP COLUMN validation_warnings;
ALTER TABLE datasets DROP COLUMN error_count;
ALTER TABLE datasets DROP COLUMN warning_count;
ALTER TABLE datasets DROP COLUMN validation_attempts;
ALTER TABLE datasets DROP COLUMN validation_lease_until;
ALTER TABLE datasets DROP COLUMN storage_deleted_at;
