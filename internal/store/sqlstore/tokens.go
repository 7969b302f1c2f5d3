package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

const tokenCols = "id, user_id, name, prefix, token_hash, created_at, last_used_at, expires_at, revoked_at"

func scanToken(sc interface{ Scan(...any) error }) (store.APIToken, error) {
	var t store.APIToken
	err := sc.Scan(&t.ID, &t.UserID, &t.Name, &t.Prefix, &t.Hash, ts{&t.CreatedAt}, nts{&t.LastUsedAt}, nts{&t.ExpiresAt}, nts{&t.RevokedAt})
	return t, err
}

// APITokenCreate stores a new token (its hash).
func (s *Store) APITokenCreate(ctx context.Context, p store.APITokenCreateParams) (store.APIToken, error) {
	t := store.APIToken{ID: uuid.NewString(), UserID: p.UserID, Name: p.Name, Prefix: p.Prefix, Hash: p.Hash,
		CreatedAt: p.At.UTC().Truncate(time.Millisecond), ExpiresAt: p.ExpiresAt}
	if p.At.IsZero() {
		return t, errNoTime("APITokenCreateParams")
	}
	err := s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			t.ID, t.UserID, t.Name, t.Prefix, t.Hash, t.CreatedAt, t.ExpiresAt)
		return err
	})
	return t, err
}

// APITokenGetByHash finds a token by hash, revoked or not.
func (s *Store) APITokenGetByHash(ctx context.Context, hash string) (store.APIToken, error) {
	var t store.APIToken
	err := s.readTx(ctx, func(x q) error {
		var err error
		t, err = scanToken(x.queryRow(ctx, "SELECT "+tokenCols+" FROM api_tokens WHERE token_hash = ?", hash))
		return err
	})
	if errors.Is(err, errNoRows) {
		return t, apperr.NotFound("API token")
	}
	return t, err
}

// APITokenList lists a user's tokens, newest first.
func (s *Store) APITokenList(ctx context.Context, userID string) ([]store.APIToken, error) {
	var out []store.APIToken
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+tokenCols+" FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC", userID)
		out, err = collect(rows, err, scanToken)
		return err
	})
	return out, err
}

// APITokenRevoke revokes one of the user's tokens.
func (s *Store) APITokenRevoke(ctx context.Context, userID, id string, at time.Time) error {
	if _, err := uuid.Parse(id); err != nil {
		return apperr.NotFound("API token")
	}
	return s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL", at, id, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.NotFound("API token")
		}
		return nil
	})
}

// APITokenTouch records use.
func (s *Store) APITokenTouch(ctx context.Context, id string, at time.Time) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", at, id)
		return err
	})
}
