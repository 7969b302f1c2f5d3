-- What the embedded local mode needs beyond Supabase: password accounts,
-- server-side sessions and API tokens. Additive; unused on Supabase Auth
-- except api_tokens, which scripts use in either mode.

-- +goose Up
CREATE TABLE brightrun_accounts (
  user_id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
  password_hash TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE brightrun_sessions (
  id TEXT PRIMARY KEY, -- SHA-256 of the cookie value; the value itself is never stored
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  csrf_token TEXT NOT NULL,
  user_agent TEXT,
  ip TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  last_seen_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_brightrun_sessions_user_id ON brightrun_sessions(user_id);
CREATE INDEX idx_brightrun_sessions_expires_at ON brightrun_sessions(expires_at);

CREATE TABLE api_tokens (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  name VARCHAR(200) NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, -- SHA-256 of the token
  prefix VARCHAR(20) NOT NULL,     -- shown in lists so users can tell tokens apart
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  last_used_at TIMESTAMPTZ,
  expires_at TIMESTAMPTZ,
  revoked_at TIMESTAMPTZ
);
CREATE INDEX idx_api_tokens_user_id ON api_tokens(user_id);

CREATE TABLE login_attempts (
  key TEXT PRIMARY KEY, -- email or client IP
  failures INTEGER NOT NULL DEFAULT 0,
  window_start TIMESTAMPTZ NOT NULL,
  locked_until TIMESTAMPTZ
);

-- Accounts, sessions and login throttling are read by the server acting as
-- the system only: RLS on with no policy for authenticated means no access.
ALTER TABLE brightrun_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE brightrun_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own tokens" ON api_tokens FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can create own tokens" ON api_tokens FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can revoke own tokens" ON api_tokens FOR UPDATE USING (auth.uid() = user_id);

CREATE TRIGGER update_brightrun_accounts_updated_at BEFORE UPDATE ON brightrun_accounts
  FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

GRANT SELECT, INSERT, UPDATE, DELETE ON brightrun_accounts, brightrun_sessions, api_tokens, login_attempts
  TO authenticated, service_role;

-- +goose Down
DROP TABLE IF EXISTS login_attempts, api_tokens, brightrun_sessions, brightrun_accounts;
