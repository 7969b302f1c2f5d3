package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/postgres"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
)

// countAs runs an UNFILTERED count over table inside a transaction set up
// exactly as the store sets up user requests.
func countAs(t *testing.T, db *sql.DB, a store.Actor, table string) int {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := postgres.SetActor(ctx, tx, a); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestRLSIsolatesUsersWithoutOwnerFilter proves that PostgreSQL itself keeps
// user B from user A's rows: the queries below have no WHERE user_id filter.
func TestRLSIsolatesUsersWithoutOwnerFilter(t *testing.T) {
	s := testdb.Postgres(t)
	a := storetest.NewUser(t, s, "a@example.com")
	b := storetest.NewUser(t, s, "b@example.com")
	db := s.DB()
	ctx := context.Background()
	// Seed A's rows as the system (service_role), like the workers do.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.SetActor(ctx, tx, store.Actor{System: true}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO datasets (id, user_id, name, storage_path, file_name, file_size) VALUES ('11111111-1111-1111-1111-111111111111', $1, 'a-data', 'a/path', 'f.json', 10)`,
		`INSERT INTO training_jobs (id, user_id, dataset_id, preset_id, hyperparameters, gpu_config, total_epochs, estimated_total_cost)
		 VALUES ('22222222-2222-2222-2222-222222222222', $1, '11111111-1111-1111-1111-111111111111', 'balanced', '{}', '{}', 3, 1.5)`,
		`INSERT INTO metrics_points (job_id, epoch, step, training_loss, learning_rate) SELECT '22222222-2222-2222-2222-222222222222', 1, 1, 2.5, 0.0001 WHERE $1::uuid IS NOT NULL`,
		`INSERT INTO cost_records (user_id, cost_type, amount, billing_period) VALUES ($1, 'compute', 1.25, CURRENT_DATE)`,
		`INSERT INTO notifications (user_id, type, title, message) VALUES ($1, 'dataset_ready', 't', 'm')`,
		`INSERT INTO api_tokens (user_id, name, token_hash, prefix) VALUES ($1, 'n', 'hash-a', 'br_')`,
	} {
		if _, err := tx.ExecContext(ctx, q, a.ID); err != nil {
			t.Fatalf("seed: %v\n%s", err, q)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tables := []string{"datasets", "training_jobs", "metrics_points", "cost_records", "notifications", "api_tokens"}
	for _, table := range tables {
		if n := countAs(t, db, store.Actor{UserID: b.ID}, table); n != 0 {
			t.Errorf("user B sees %d of user A's rows in %s", n, table)
		}
		if n := countAs(t, db, store.Actor{UserID: a.ID}, table); n != 1 {
			t.Errorf("user A sees %d of own rows in %s, want 1", n, table)
		}
		if n := countAs(t, db, store.Actor{System: true}, table); n != 1 {
			t.Errorf("system sees %d rows in %s, want 1", n, table)
		}
	}
	// Accounts and sessions are never readable by a user role.
	for _, table := range []string{"brightrun_accounts", "brightrun_sessions"} {
		if n := countAs(t, db, store.Actor{UserID: a.ID}, table); n != 0 {
			t.Errorf("user role reads %d rows of %s", n, table)
		}
	}
	// And a user cannot write a row owned by someone else.
	tx, _ = db.BeginTx(ctx, nil)
	defer tx.Rollback()
	_ = postgres.SetActor(ctx, tx, store.Actor{UserID: b.ID})
	if _, err := tx.ExecContext(ctx, `INSERT INTO datasets (user_id, name, storage_path, file_name, file_size) VALUES ($1, 'x', 'b/x', 'f', 1)`, a.ID); err == nil {
		t.Fatal("user B inserted a dataset owned by user A")
	}
}

// TestMigrationsIdempotentOnExistingRoles re-runs migrations on a second
// database of the same cluster, where the roles already exist.
func TestMigrationsIdempotentOnExistingRoles(t *testing.T) {
	testdb.Postgres(t)
	testdb.Postgres(t)
}
