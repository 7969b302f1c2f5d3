-- Preferences: "which answer is better" from the playground, per model, kept
-- for preference tuning (exported as {"prompt","chosen","rejected"} JSONL).

-- +goose Up
CREATE TABLE preferences (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  model_id TEXT NOT NULL REFERENCES model_artifacts(id) ON DELETE CASCADE,
  messages TEXT NOT NULL,
  left_side TEXT NOT NULL CHECK (left_side IN ('base', 'adapter')),
  left_text TEXT NOT NULL,
  right_text TEXT NOT NULL,
  choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie')),
  created_at TEXT NOT NULL
);
CREATE INDEX idx_preferences_model ON preferences(user_id, model_id, created_at);

-- +goose Down
DROP TABLE preferences;
