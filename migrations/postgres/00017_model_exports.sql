-- Issue 12: exports. A model_exports row is what the user asked for (the
-- merged model or a GGUF file of one of their models) and, once an agent made
-- it, the stored result; the agent_work row it points at (kind 'export') is
-- the queue item agents claim, lease and finish like a preflight, so its
-- status, error and agent are the export's. Deleted exports keep their row
-- (deleted_at) so the storage they used stays billed for the days they existed.

-- +goose Up
CREATE TABLE model_exports (
  id UUID PRIMARY KEY,
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  model_id UUID NOT NULL REFERENCES model_artifacts(id) ON DELETE CASCADE,
  work_id UUID NOT NULL UNIQUE REFERENCES agent_work(id) ON DELETE CASCADE,
  format VARCHAR(20) NOT NULL CHECK (format IN ('merged', 'gguf')),
  dtype VARCHAR(20) NOT NULL DEFAULT '',     -- merged: bfloat16 | float16 | float32; gguf: ''
  gguf_type VARCHAR(20) NOT NULL DEFAULT '', -- gguf: f16 | q8_0 | f32 | bf16; merged: ''
  file_name TEXT,
  storage_path TEXT,
  size_bytes BIGINT,
  agent_name TEXT, -- the agent that holds or held its work (users cannot read agents)
  sha256 VARCHAR(64),
  created_at TIMESTAMPTZ NOT NULL,
  ready_at TIMESTAMPTZ,
  deleted_at TIMESTAMPTZ
);
-- One live export per (model, format, type): asking again returns it.
CREATE UNIQUE INDEX idx_model_exports_key ON model_exports(model_id, format, dtype, gguf_type) WHERE deleted_at IS NULL;
CREATE INDEX idx_model_exports_user ON model_exports(user_id, model_id, created_at);
ALTER TABLE model_exports ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own model exports" ON model_exports FOR SELECT USING (auth.uid() = user_id);
GRANT SELECT ON model_exports TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON model_exports TO service_role;

-- +goose Down
DROP TABLE model_exports;
