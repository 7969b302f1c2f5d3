-- SQLite has no schemas or roles: "users" stands in for Supabase's auth.users.
-- Isolation on SQLite is the application's owner filter on every query.

-- +goose Up
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX idx_users_email ON users(email);

-- +goose Down
DROP TABLE users;
