package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// SessionCreate stores a session.
func (s *Store) SessionCreate(ctx context.Context, se store.Session) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO brightrun_sessions (id, user_id, csrf_token, user_agent, ip, created_at, last_seen_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, se.ID, se.UserID, se.CSRFToken, se.UserAgent, se.IP, se.CreatedAt, se.LastSeenAt, se.ExpiresAt)
		return err
	})
}

// SessionGet loads a session by id (the cookie's hash).
func (s *Store) SessionGet(ctx context.Context, id string) (store.Session, error) {
	var se store.Session
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, `SELECT id, user_id, csrf_token, user_agent, ip, created_at, last_seen_at, expires_at
			FROM brightrun_sessions WHERE id = ?`, id).
			Scan(&se.ID, &se.UserID, &se.CSRFToken, nstr{&se.UserAgent}, nstr{&se.IP}, ts{&se.CreatedAt}, ts{&se.LastSeenAt}, ts{&se.ExpiresAt})
	})
	if errors.Is(err, errNoRows) {
		return se, apperr.NotFound("session")
	}
	return se, err
}

// SessionTouch slides a session's expiry.
func (s *Store) SessionTouch(ctx context.Context, id string, seen, expires time.Time) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, "UPDATE brightrun_sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?", seen, expires, id)
		return err
	})
}

// SessionDelete removes a session (logout).
func (s *Store) SessionDelete(ctx context.Context, id string) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, "DELETE FROM brightrun_sessions WHERE id = ?", id)
		return err
	})
}

// SessionDeleteExpired removes sessions past their expiry.
func (s *Store) SessionDeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, "DELETE FROM brightrun_sessions WHERE expires_at < ?", now)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// LoginThrottleGet loads the failure counter for key (zero value if none).
func (s *Store) LoginThrottleGet(ctx context.Context, key string) (store.LoginThrottle, error) {
	t := store.LoginThrottle{Key: key}
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, "SELECT failures, window_start, locked_until FROM login_attempts WHERE key = ?", key).
			Scan(&t.Failures, ts{&t.WindowStart}, nts{&t.LockedUntil})
	})
	if errors.Is(err, errNoRows) {
		return t, nil
	}
	return t, err
}

// LoginThrottlePut upserts the failure counter.
func (s *Store) LoginThrottlePut(ctx context.Context, t store.LoginThrottle) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO login_attempts (key, failures, window_start, locked_until) VALUES (?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start, locked_until = excluded.locked_until`,
			t.Key, t.Failures, t.WindowStart, t.LockedUntil)
		return err
	})
}

// LoginThrottleDelete clears the counter after a successful login.
func (s *Store) LoginThrottleDelete(ctx context.Context, key string) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, "DELETE FROM login_attempts WHERE key = ?", key)
		return err
	})
}
