-- Inference usage: one row per chat request served by an agent (the /v1 API
-- and the playground), with its token counts and timings. Each finished row
-- has an 'inference' cost record beside it.

-- +goose Up
CREATE TABLE inference_requests (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  base_model TEXT NOT NULL,
  model_id TEXT REFERENCES model_artifacts(id) ON DELETE SET NULL,
  source TEXT NOT NULL CHECK (source IN ('v1', 'playground')),
  status TEXT NOT NULL CHECK (status IN ('completed', 'cancelled', 'failed', 'timeout')),
  finish_reason TEXT,
  error TEXT,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  gpu_type TEXT,
  queue_seconds REAL,
  first_token_seconds REAL,
  total_seconds REAL,
  created_at TEXT NOT NULL,
  finished_at TEXT NOT NULL
);
CREATE INDEX idx_inference_requests_user ON inference_requests(user_id, created_at DESC);

-- +goose Down
DROP TABLE inference_requests;
