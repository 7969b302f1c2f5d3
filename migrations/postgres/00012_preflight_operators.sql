-- Issue 15: the per-example token profile a dataset's validation computes
-- (what a max_seq_length keeps, truncates and drops), and operators (who
-- see and manage trainer agents; the first account is one), and job names.

-- +goose Up
ALTER TABLE training_jobs ADD COLUMN name VARCHAR(200); -- optional, user-given
ALTER TABLE datasets ADD COLUMN token_profile JSONB;
CREATE TABLE brightrun_operators (
  user_id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
-- Only the server (service role) reads or grants the operator role.
ALTER TABLE brightrun_operators ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON brightrun_operators TO service_role;
INSERT INTO brightrun_operators (user_id)
  SELECT id FROM auth.users ORDER BY created_at, id LIMIT 1;

-- +goose Down
ALTER TABLE training_jobs DROP COLUMN name;
DROP TABLE brightrun_operators;
ALTER TABLE datasets DROP COLUMN token_profile;
