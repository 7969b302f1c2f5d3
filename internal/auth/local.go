package auth

import (
	"context"
	"github.com/brightrun/brightrun/internal/textsafe"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// Local is local-account authentication: sign-up, login with throttling,
// server-side sessions, logout, and API tokens.
type Local struct {
	Store store.Store
	Now   func() time.Time
	// SessionTTL is the idle lifetime of a session (sliding).
	SessionTTL time.Duration
	// Throttle: after MaxFailures failed logins for one email within Window,
	// that email is locked for Lockout; IPs get MaxFailures*4.
	MaxFailures int
	Window      time.Duration
	Lockout     time.Duration
}

// NewLocal returns Local with production defaults.
func NewLocal(s store.Store) *Local {
	return &Local{Store: s, Now: time.Now, SessionTTL: 14 * 24 * time.Hour, MaxFailures: 5, Window: 15 * time.Minute, Lockout: 15 * time.Minute}
}

// Credentials are sign-up and login input.
type Credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// ValidateCredentials checks sign-up input.
func ValidateCredentials(c Credentials) error {
	f := apperr.FieldErrors{}
	if a, err := mail.ParseAddress(strings.TrimSpace(c.Email)); err != nil || a.Address != strings.TrimSpace(c.Email) || len(c.Email) > 254 {
		f.Add("email", "enter a valid email address such as you@example.com")
	}
	if n := utf8.RuneCountInString(c.Password); n < 8 {
		f.Add("password", "use at least 8 characters")
	} else if len(c.Password) > 1024 {
		f.Add("password", "use at most 1024 bytes")
	}
	return f.Err()
}

// Signup creates an account; the first account is an operator
// (docs/security.md).
func (l *Local) Signup(ctx context.Context, c Credentials) (store.User, error) {
	return l.SignupAs(ctx, c, store.OperatorIfNone)
}

// SignupAs creates an account, an operator as op says (`brightrun users
// create --admin` passes store.OperatorAlways).
func (l *Local) SignupAs(ctx context.Context, c Credentials, op store.OperatorGrant) (store.User, error) {
	if err := ValidateCredentials(c); err != nil {
		return store.User{}, err
	}
	h, err := HashPassword(c.Password)
	if err != nil {
		return store.User{}, err
	}
	return l.Store.UserCreate(store.AsSystem(ctx), store.UserCreateParams{Email: c.Email, PasswordHash: h, At: l.Now().UTC(), Operator: op})
}

// Login checks the password (with throttling per email and per IP) and
// creates a session. It returns the cookie value (never stored) and session.
func (l *Local) Login(ctx context.Context, c Credentials, ip, userAgent string) (string, store.Session, error) {
	sys := store.AsSystem(ctx)
	keys := []string{"email:" + strings.ToLower(strings.TrimSpace(c.Email)), "ip:" + ip}
	now := l.Now().UTC()
	for _, k := range keys {
		t, err := l.Store.LoginThrottleGet(sys, k)
		if err != nil {
			return "", store.Session{}, err
		}
		if t.LockedUntil != nil && now.Before(*t.LockedUntil) {
			wait := t.LockedUntil.Sub(now).Round(time.Second)
			return "", store.Session{}, apperr.RateLimited("too many failed logins: try again in %s", wait)
		}
	}
	u, err := l.Store.UserGetByEmail(sys, c.Email)
	ok := false
	if err == nil {
		var h string
		if h, err = l.Store.AccountPasswordHash(sys, u.ID); err == nil {
			ok, err = VerifyPassword(c.Password, h)
		}
	} else {
		// Spend the same time as a real check so timing does not reveal accounts.
		_, _ = VerifyPassword(c.Password, dummyHash)
	}
	if err != nil && !apperr.Is(err, apperr.KindNotFound) {
		return "", store.Session{}, err
	}
	if !ok {
		for i, k := range keys {
			limit := l.MaxFailures
			if i == 1 {
				limit *= 4
			}
			if err := l.recordFailure(sys, k, now, limit); err != nil {
				return "", store.Session{}, err
			}
		}
		return "", store.Session{}, apperr.Unauthorized("email or password is incorrect")
	}
	_ = l.Store.LoginThrottleDelete(sys, keys[0])
	return l.newSession(sys, u.ID, ip, userAgent, now)
}

var dummyHash, _ = HashPassword("brightrun-timing-equaliser")

func (l *Local) recordFailure(ctx context.Context, key string, now time.Time, limit int) error {
	t, err := l.Store.LoginThrottleGet(ctx, key)
	if err != nil {
		return err
	}
	if t.WindowStart.IsZero() || now.Sub(t.WindowStart) > l.Window {
		t = store.LoginThrottle{Key: key, WindowStart: now}
	}
	t.Failures++
	if t.Failures >= limit {
		until := now.Add(l.Lockout)
		t.LockedUntil = &until
	}
	return l.Store.LoginThrottlePut(ctx, t)
}

func (l *Local) newSession(ctx context.Context, userID, ip, ua string, now time.Time) (string, store.Session, error) {
	cookie := randomString(32)
	se := store.Session{ID: HashSecret(cookie), UserID: userID, CSRFToken: randomString(32), IP: ip, UserAgent: truncate(ua, 500),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(l.SessionTTL)}
	if err := l.Store.SessionCreate(ctx, se); err != nil {
		return "", se, err
	}
	return cookie, se, nil
}

// Session resolves a session cookie value, sliding its expiry.
func (l *Local) Session(ctx context.Context, cookie string) (store.Session, error) {
	sys := store.AsSystem(ctx)
	se, err := l.Store.SessionGet(sys, HashSecret(cookie))
	if err != nil {
		return se, apperr.Unauthorized("your session has ended: sign in again")
	}
	now := l.Now().UTC()
	if now.After(se.ExpiresAt) {
		_ = l.Store.SessionDelete(sys, se.ID)
		return se, apperr.Unauthorized("your session has expired: sign in again")
	}
	if now.Sub(se.LastSeenAt) > time.Hour { // bounded write rate
		se.LastSeenAt, se.ExpiresAt = now, now.Add(l.SessionTTL)
		if err := l.Store.SessionTouch(sys, se.ID, se.LastSeenAt, se.ExpiresAt); err != nil {
			return se, err
		}
	}
	return se, nil
}

// Logout ends a session.
func (l *Local) Logout(ctx context.Context, sessionID string) error {
	return l.Store.SessionDelete(store.AsSystem(ctx), sessionID)
}

// CreateToken issues an API token for userID at now; the token is shown once.
func CreateToken(ctx context.Context, s store.Store, userID, name string, expires *time.Time, now time.Time) (string, store.APIToken, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "token"
	}
	if utf8.RuneCountInString(name) > 200 {
		return "", store.APIToken{}, apperr.Validation("validation failed", map[string]string{"name": "use at most 200 characters"})
	}
	tok, hash, prefix := NewAPIToken()
	t, err := s.APITokenCreate(store.AsSystem(ctx), store.APITokenCreateParams{UserID: userID, Name: name, Hash: hash, Prefix: prefix, ExpiresAt: expires, At: now})
	return tok, t, err
}

// TokenPrincipal resolves a bearer API token.
func TokenPrincipal(ctx context.Context, s store.Store, token string, now time.Time) (Principal, error) {
	sys := store.AsSystem(ctx)
	t, err := s.APITokenGetByHash(sys, HashSecret(token))
	switch {
	case apperr.Is(err, apperr.KindNotFound):
		return Principal{}, apperr.Unauthorized("the API token is not valid")
	case err != nil:
		return Principal{}, err
	case t.RevokedAt != nil:
		return Principal{}, apperr.Unauthorized("the API token was revoked")
	case t.ExpiresAt != nil && now.After(*t.ExpiresAt):
		return Principal{}, apperr.Unauthorized("the API token has expired")
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		_ = s.APITokenTouch(sys, t.ID, now)
	}
	return Principal{UserID: t.UserID, Via: "token"}, nil
}

// truncate makes a header value from the client storable: valid UTF-8, one
// line, cut to n runes (a byte cut could split a character, which PostgreSQL
// rejects).
func truncate(s string, n int) string { return textsafe.Line(s, n) }
