// Package migrations embeds the schema migrations of both engines. Each engine
// has its own directory; a version number means the same change on both.
package migrations

import "embed"

// Postgres holds the PostgreSQL migrations (Supabase-compatible).
//
//go:embed postgres/*.sql
var Postgres embed.FS

// SQLite holds the SQLite migrations.
//
//go:embed sqlite/*.sql
var SQLite embed.FS
