// Package sqlstore implements store.Store over database/sql for both engines.
// Engine packages (store/sqlite, store/postgres) supply a Dialect: connection
// pools, placeholder style, and the hook that sets each transaction's role.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/store"
)

// Dialect is what differs between engines.
type Dialect struct {
	Name       string // "sqlite" or "postgres"
	Numbered   bool   // $1, $2 placeholders instead of ?
	UsersTable string // auth.users or users
	// BeginTx runs first in every transaction (PostgreSQL: SET role and claims).
	BeginTx func(ctx context.Context, tx *sql.Tx, a store.Actor) error
	// IsUniqueViolation and IsForeignKeyViolation classify driver errors.
	IsUniqueViolation     func(error) bool
	IsForeignKeyViolation func(error) bool
	// ILike is the case-insensitive LIKE operator.
	ILike string
}

// Store is the shared implementation of store.Store.
type Store struct {
	read, write *sql.DB
	d           Dialect
}

// New returns a Store. read and write may be the same pool; SQLite uses a
// one-connection write pool so there is exactly one writer.
func New(read, write *sql.DB, d Dialect) *Store {
	return &Store{read: read, write: write, d: d}
}

// Engine names the database engine.
func (s *Store) Engine() string { return s.d.Name }

// Ping checks both pools.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.read.PingContext(ctx); err != nil {
		return err
	}
	return s.write.PingContext(ctx)
}

// Close closes the pools.
func (s *Store) Close() error {
	err := s.read.Close()
	if s.write != s.read {
		err = errors.Join(err, s.write.Close())
	}
	return err
}

// DB exposes the write pool for engine-specific tests and tools.
func (s *Store) DB() *sql.DB { return s.write }

// q runs queries inside one transaction, rewriting placeholders.
type q struct {
	tx *sql.Tx
	s  *Store
}

func (s *Store) rebind(query string) string {
	if !s.d.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (x q) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return x.tx.ExecContext(ctx, x.s.rebind(query), x.s.args(args)...)
}

func (x q) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return x.tx.QueryRowContext(ctx, x.s.rebind(query), x.s.args(args)...)
}

func (x q) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return x.tx.QueryContext(ctx, x.s.rebind(query), x.s.args(args)...)
}

// args converts times to the engine's representation.
func (s *Store) args(in []any) []any {
	out := make([]any, len(in))
	for i, a := range in {
		switch v := a.(type) {
		case time.Time:
			out[i] = s.timeArg(v)
		case *time.Time:
			if v == nil {
				out[i] = nil
			} else {
				out[i] = s.timeArg(*v)
			}
		default:
			out[i] = a
		}
	}
	return out
}

// TimeLayout is how SQLite stores timestamps: fixed-width UTC, so text order
// is time order.
const TimeLayout = "2006-01-02T15:04:05.000Z"

func (s *Store) timeArg(t time.Time) any {
	if s.d.Name == "sqlite" {
		return t.UTC().Format(TimeLayout)
	}
	return t.UTC()
}

func (s *Store) tx(ctx context.Context, write bool, fn func(q) error) error {
	a, err := store.ActorFrom(ctx)
	if err != nil {
		return err
	}
	db := s.read
	if write {
		db = s.write
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: !write && s.d.Name == "postgres"})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if s.d.BeginTx != nil {
		if err := s.d.BeginTx(ctx, tx, a); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("set actor: %w", err)
		}
	}
	if err := fn(q{tx: tx, s: s}); err != nil {
		_ = tx.Rollback()
		return s.mapErr(err)
	}
	return s.mapErr(tx.Commit())
}

func (s *Store) readTx(ctx context.Context, fn func(q) error) error  { return s.tx(ctx, false, fn) }
func (s *Store) writeTx(ctx context.Context, fn func(q) error) error { return s.tx(ctx, true, fn) }

// ErrNotFound is returned (wrapped in an apperr) when a row is missing.
var errNoRows = sql.ErrNoRows

func (s *Store) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if s.d.IsUniqueViolation != nil && s.d.IsUniqueViolation(err) {
		return &uniqueErr{err}
	}
	return err
}

type uniqueErr struct{ error }

func (e *uniqueErr) Unwrap() error { return e.error }

// IsUnique reports whether err came from a unique constraint.
func IsUnique(err error) bool {
	var u *uniqueErr
	return errors.As(err, &u)
}

// readOne runs fn in a read transaction and returns its value.
func readOne[T any](s *Store, ctx context.Context, fn func(q) (T, error)) (T, error) {
	var v T
	err := s.readTx(ctx, func(x q) error {
		var err error
		v, err = fn(x)
		return err
	})
	return v, err
}

// stamp is the caller's time for a row, at millisecond precision (what both
// engines store). The store never reads the clock itself: a zero time is a
// wiring bug, reported as one.
func stamp(at time.Time, what string) (time.Time, error) {
	if at.IsZero() {
		return at, errNoTime(what)
	}
	return at.UTC().Truncate(time.Millisecond), nil
}

func errNoTime(what string) error {
	return fmt.Errorf("store: %s needs the time from the caller (At is zero)", what)
}
