// Package testdb gives tests a fresh, migrated store on each engine: a SQLite
// file in t.TempDir(), and a new database on the PostgreSQL server named by
// BRIGHTRUN_TEST_POSTGRES_URL (started by `make test` / .ci/run). When that
// variable is unset the PostgreSQL cases skip, unless
// BRIGHTRUN_REQUIRE_POSTGRES=1, which makes them fail instead (CI sets it).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/brightrun/brightrun/internal/store/postgres"
	"github.com/brightrun/brightrun/internal/store/sqlite"
	"github.com/brightrun/brightrun/internal/store/sqlstore"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// Engine opens a fresh store on one engine.
type Engine struct {
	Name string
	Open func(t testing.TB) *sqlstore.Store
	// URL returns the database URL of a fresh database (for servers the test
	// starts itself); "" for SQLite means "use the data dir".
	URL func(t testing.TB) string
}

// Engines lists SQLite and PostgreSQL.
func Engines() []Engine {
	return []Engine{
		{Name: "sqlite", Open: SQLite, URL: func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "brightrun.db") }},
		{Name: "postgres", Open: Postgres, URL: PostgresURL},
	}
}

// ForEach runs fn as a subtest on every engine.
func ForEach(t *testing.T, fn func(t *testing.T, e Engine)) {
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) { fn(t, e) })
	}
}

// SQLite opens a fresh SQLite store.
func SQLite(t testing.TB) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Postgres opens a store on a fresh database.
func Postgres(t testing.TB) *sqlstore.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), PostgresURL(t))
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresURL creates a fresh database and returns its URL; it is dropped
// when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("BRIGHTRUN_TEST_POSTGRES_URL")
	if admin == "" {
		if os.Getenv("BRIGHTRUN_REQUIRE_POSTGRES") == "1" {
			t.Fatal("BRIGHTRUN_TEST_POSTGRES_URL is not set but BRIGHTRUN_REQUIRE_POSTGRES=1: start a server with scripts/pg-test-server.sh")
		}
		t.Skip("PostgreSQL tests skipped: BRIGHTRUN_TEST_POSTGRES_URL is not set (make test and .ci/run start a throwaway server)")
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "brtest_" + hex.EncodeToString(b)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
