// Package postgres opens the store on PostgreSQL (or Supabase) with pgx. Each
// transaction first sets the Supabase-style role and JWT claims of its actor,
// so row-level security applies to every user query.
package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/migrate"
	"github.com/brightrun/brightrun/internal/store/sqlstore"
	"github.com/brightrun/brightrun/migrations"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
)

// Open connects to url and migrates the database.
func Open(ctx context.Context, url string) (*sqlstore.Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: cannot connect (check BRIGHTRUN_DATABASE_URL): %w", err)
	}
	if err := migrate.Up(ctx, db, goose.DialectPostgres, migrations.Postgres, "postgres"); err != nil {
		db.Close()
		return nil, err
	}
	return sqlstore.New(db, db, Dialect()), nil
}

// Dialect is PostgreSQL's sqlstore dialect.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:       "postgres",
		Numbered:   true,
		UsersTable: "auth.users",
		ILike:      "ILIKE",
		BeginTx:    SetActor,
		IsUniqueViolation: func(err error) bool {
			var e *pgconn.PgError
			return errors.As(err, &e) && e.Code == "23505"
		},
		IsForeignKeyViolation: func(err error) bool {
			var e *pgconn.PgError
			return errors.As(err, &e) && e.Code == "23503"
		},
	}
}

// SetActor makes the rest of tx run as Supabase would run a request: role
// authenticated with the user's claims, or service_role for the system.
func SetActor(ctx context.Context, tx *sql.Tx, a store.Actor) error {
	role, claims := "service_role", map[string]any{"role": "service_role"}
	if !a.System {
		role = "authenticated"
		claims = map[string]any{"sub": a.UserID, "role": "authenticated", "aud": "authenticated"}
	}
	c, _ := json.Marshal(claims)
	sub, _ := claims["sub"].(string)
	_, err := tx.ExecContext(ctx, `SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
		set_config('request.jwt.claim.sub', $3, true)`, role, string(c), sub)
	return err
}
