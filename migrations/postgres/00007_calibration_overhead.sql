-- Self-calibrating estimates also learn the fixed part of a run (model load,
-- evaluation, upload) per GPU type and model.

-- +goose Up
ALTER TABLE training_jobs ADD COLUMN measured_overhead_seconds DOUBLE PRECISION;

-- +goose Down
ALTER TABLE training_jobs DROP COLUMN measured_overhead_seconds;
