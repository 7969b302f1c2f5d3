package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// UserCreate creates a user and its password account in one transaction.
func (s *Store) UserCreate(ctx context.Context, p store.UserCreateParams) (store.User, error) {
	u := store.User{ID: uuid.NewString(), Email: normEmail(p.Email), CreatedAt: p.At.UTC().Truncate(time.Millisecond)}
	if p.At.IsZero() {
		return u, errNoTime("UserCreateParams")
	}
	err := s.writeTx(ctx, func(x q) error {
		if _, err := x.exec(ctx, "INSERT INTO "+s.d.UsersTable+" (id, email, created_at, updated_at) VALUES (?, ?, ?, ?)", u.ID, u.Email, u.CreatedAt, u.CreatedAt); err != nil {
			return err
		}
		if _, err := x.exec(ctx, "INSERT INTO brightrun_accounts (user_id, password_hash) VALUES (?, ?)", u.ID, p.PasswordHash); err != nil {
			return err
		}
		return s.grantTx(ctx, x, u.ID, p.Operator, u.CreatedAt)
	})
	if IsUnique(err) {
		return store.User{}, apperr.Conflict("an account with email %s already exists", u.Email)
	}
	return u, err
}

// UserEnsure returns the user with id, creating the row (no password) when
// absent: Supabase Auth users the local database has not seen yet.
func (s *Store) UserEnsure(ctx context.Context, id, email string, at time.Time) (store.User, error) {
	u, err := s.UserGet(ctx, id)
	if err == nil || !apperr.Is(err, apperr.KindNotFound) {
		return u, err
	}
	now, err := stamp(at, "UserEnsure")
	if err != nil {
		return store.User{}, err
	}
	err = s.writeTx(ctx, func(x q) error {
		if _, err := x.exec(ctx, "INSERT INTO "+s.d.UsersTable+" (id, email, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING", id, nullIfEmpty(normEmail(email)), now, now); err != nil {
			return err
		}
		// The first user (Supabase Auth: the first one seen) is an operator.
		return s.grantTx(ctx, x, id, store.OperatorIfNone, now)
	})
	if err != nil {
		return store.User{}, err
	}
	return s.UserGet(ctx, id)
}

func (s *Store) userBy(ctx context.Context, where string, arg any) (store.User, error) {
	var u store.User
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, "SELECT id, email, created_at FROM "+s.d.UsersTable+" WHERE "+where, arg).
			Scan(&u.ID, nstr{&u.Email}, ts{&u.CreatedAt})
	})
	if errors.Is(err, errNoRows) {
		return u, apperr.NotFound("user")
	}
	return u, err
}

// UserGet loads a user by id.
func (s *Store) UserGet(ctx context.Context, id string) (store.User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return store.User{}, apperr.NotFound("user")
	}
	return s.userBy(ctx, "id = ?", id)
}

// UserGetByEmail loads a user by email (case-insensitive).
func (s *Store) UserGetByEmail(ctx context.Context, email string) (store.User, error) {
	return s.userBy(ctx, "email = ?", normEmail(email))
}

// AccountPasswordHash returns the user's password hash.
func (s *Store) AccountPasswordHash(ctx context.Context, userID string) (string, error) {
	var h string
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, "SELECT password_hash FROM brightrun_accounts WHERE user_id = ?", userID).Scan(&h)
	})
	if errors.Is(err, errNoRows) {
		return "", apperr.NotFound("account")
	}
	return h, err
}

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }
