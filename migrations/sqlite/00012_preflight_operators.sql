-- Issue 15: the per-example token profile a dataset's validation computes
-- (what a max_seq_length keeps, truncates and drops), and operators (who
-- see and manage trainer agents; the first account is one), and job names.

-- +goose Up
ALTER TABLE training_jobs ADD COLUMN name TEXT; -- optional, user-given
ALTER TABLE datasets ADD COLUMN token_profile TEXT;
CREATE TABLE brightrun_operators (
  user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  created_at TEXT NOT NULL
);
INSERT INTO brightrun_operators (user_id, created_at)
  SELECT id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM users ORDER BY created_at, id LIMIT 1;

-- +goose Down
ALTER TABLE training_jobs DROP COLUMN name;
DROP TABLE brightrun_operators;
ALTER TABLE datasets DROP COLUMN token_profile;
