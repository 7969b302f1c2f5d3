-- Preferences: "which answer is better" from the playground, per model, kept
-- for preference tuning (exported as {"prompt","chosen","rejected"} JSONL).

-- +goose Up
CREATE TABLE preferences (
  id UUID PRIMARY KEY,
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  model_id UUID NOT NULL REFERENCES model_artifacts(id) ON DELETE CASCADE,
  messages JSONB NOT NULL,
  left_side TEXT NOT NULL CHECK (left_side IN ('base', 'adapter')),
  left_text TEXT NOT NULL,
  right_text TEXT NOT NULL,
  choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie')),
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_preferences_model ON preferences(user_id, model_id, created_at);
ALTER TABLE preferences ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own preferences" ON preferences FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can create own preferences" ON preferences FOR INSERT WITH CHECK (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON preferences TO authenticated, service_role;

-- +goose Down
DROP TABLE preferences;
