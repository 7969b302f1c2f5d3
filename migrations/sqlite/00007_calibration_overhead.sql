-- +goose Up
ALTER TABLE training_jobs ADD COLUMN measured_overhead_seconds REAL;

-- +goose Down
ALTER TABLE training_jobs DROP COLUMN measured_overhead_seconds;
