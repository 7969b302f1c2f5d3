// Package auth authenticates requests: local accounts with argon2id passwords
// and server-side sessions (with CSRF tokens and login throttling), API
// tokens, and Supabase Auth JWTs.
package auth

import "context"

// Principal is the signed-in user of a request.
type Principal struct {
	UserID string
	Email  string
	Via    string // "session", "token", "jwt", "supabase_cookie"
	// CSRFToken is set for cookie-authenticated requests; unsafe methods
	// must echo it (X-CSRF-Token header or csrf_token form field).
	CSRFToken string
	SessionID string
}

// CookieAuth reports whether the browser's cookie authenticated the request
// (and so CSRF protection applies).
func (p Principal) CookieAuth() bool { return p.Via == "session" || p.Via == "supabase_cookie" }

type principalKey struct{}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the request's principal, if signed in.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// UserID is the signed-in user's id of a request that passed RequireUser.
func UserID(r interface{ Context() context.Context }) string {
	p, _ := PrincipalFrom(r.Context())
	return p.UserID
}
