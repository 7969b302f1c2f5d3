// Package store is BrightRun's persistence interface. One implementation
// (sqlstore) serves both engines: store/sqlite and store/postgres open it with
// their connection settings and transaction hooks.
package store

import (
	"context"
	"time"
)

// Store is everything the domains persist. Methods are NounVerb(ctx, params).
// Every call needs an actor in ctx (WithUser or AsSystem): on PostgreSQL the
// actor becomes the transaction's role and JWT claims, so row-level security
// isolates users even where a query forgot its owner filter.
type Store interface {
	UserCreate(ctx context.Context, p UserCreateParams) (User, error)
	UserEnsure(ctx context.Context, id, email string, at time.Time) (User, error)
	UserGet(ctx context.Context, id string) (User, error)
	UserGetByEmail(ctx context.Context, email string) (User, error)
	AccountPasswordHash(ctx context.Context, userID string) (string, error)

	SessionCreate(ctx context.Context, s Session) error
	SessionGet(ctx context.Context, id string) (Session, error)
	SessionTouch(ctx context.Context, id string, seen, expires time.Time) error
	SessionDelete(ctx context.Context, id string) error
	SessionDeleteExpired(ctx context.Context, now time.Time) (int64, error)

	APITokenCreate(ctx context.Context, p APITokenCreateParams) (APIToken, error)
	APITokenGetByHash(ctx context.Context, hash string) (APIToken, error)
	APITokenList(ctx context.Context, userID string) ([]APIToken, error)
	APITokenRevoke(ctx context.Context, userID, id string, at time.Time) error
	APITokenTouch(ctx context.Context, id string, at time.Time) error

	LoginThrottleGet(ctx context.Context, key string) (LoginThrottle, error)
	LoginThrottlePut(ctx context.Context, t LoginThrottle) error
	LoginThrottleDelete(ctx context.Context, key string) error

	DatasetStore
	NotificationStore
	JobStore
	ExecutionStore
	ModelStore
	CostStore
	DeliveryStore
	AgentAdminStore
	PauseStore
	FineTuneStore
	InferenceStore
	PreferenceStore
	LaunchStore
	AgentWorkStore
	ModelExportStore

	Ping(ctx context.Context) error
	Close() error
	Engine() string
}

// User is an account (auth.users on PostgreSQL/Supabase, users on SQLite).
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// UserCreateParams creates a local account.
type UserCreateParams struct {
	Email        string
	PasswordHash string
	At           time.Time // the caller's clock
	Operator     OperatorGrant
}

// Session is a server-side browser session. ID is the SHA-256 of the cookie.
type Session struct {
	ID         string
	UserID     string
	CSRFToken  string
	UserAgent  string
	IP         string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// APIToken is a bearer token for scripts; only its hash is stored.
type APIToken struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Hash       string     `json:"-"`
}

// APITokenCreateParams creates a token row.
type APITokenCreateParams struct {
	At        time.Time // the caller's clock
	UserID    string
	Name      string
	Hash      string
	Prefix    string
	ExpiresAt *time.Time
}

// LoginThrottle counts failed logins for one key (email or IP).
type LoginThrottle struct {
	Key         string
	Failures    int
	WindowStart time.Time
	LockedUntil *time.Time
}
