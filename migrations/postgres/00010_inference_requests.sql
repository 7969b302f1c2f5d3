-- Inference usage: one row per chat request served by an agent (the /v1 API
-- and the playground), with its token counts and timings. Each finished row
-- has an 'inference' cost record beside it.

-- +goose Up
CREATE TABLE inference_requests (
  id UUID PRIMARY KEY,
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  base_model TEXT NOT NULL,
  model_id UUID REFERENCES model_artifacts(id) ON DELETE SET NULL,
  source TEXT NOT NULL CHECK (source IN ('v1', 'playground')),
  status TEXT NOT NULL CHECK (status IN ('completed', 'cancelled', 'failed', 'timeout')),
  finish_reason TEXT,
  error TEXT,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  gpu_type TEXT,
  queue_seconds DOUBLE PRECISION,
  first_token_seconds DOUBLE PRECISION,
  total_seconds DOUBLE PRECISION,
  created_at TIMESTAMPTZ NOT NULL,
  finished_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_inference_requests_user ON inference_requests(user_id, created_at DESC);
ALTER TABLE inference_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own inference requests" ON inference_requests FOR SELECT USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON inference_requests TO authenticated, service_role;

-- +goose Down
DROP TABLE inference_requests;
