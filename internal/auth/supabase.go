package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/golang-jwt/jwt/v5"
)

// Supabase verifies Supabase Auth access tokens: HS256 with the project's
// JWT secret, or asymmetric keys (RS256/ES256) from the project's JWKS.
// Expiry, audience "authenticated" and issuer SUPABASE_URL/auth/v1 are
// checked; sub is the user id.
type Supabase struct {
	issuer string
	secret []byte
	jwks   keyfunc.Keyfunc
}

// NewSupabase builds the verifier. jwksURL may be empty when only an HS256
// secret is used; the JWKS is fetched in the background and refreshed.
func NewSupabase(ctx context.Context, supabaseURL, secret, jwksURL string) (*Supabase, error) {
	v := &Supabase{issuer: strings.TrimRight(supabaseURL, "/") + "/auth/v1", secret: []byte(secret)}
	if jwksURL != "" {
		k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{jwksURL}, keyfunc.Override{})
		if err != nil {
			return nil, fmt.Errorf("supabase JWKS %s: %w", jwksURL, err)
		}
		v.jwks = k
	}
	return v, nil
}

type supabaseClaims struct {
	Email string `json:"email"`
	Role  string `json:"role"`
	jwt.RegisteredClaims
}

func (v *Supabase) key(t *jwt.Token) (any, error) {
	if t.Method.Alg() == "HS256" {
		if len(v.secret) == 0 {
			return nil, errors.New("HS256 tokens need BRIGHTRUN_SUPABASE_JWT_SECRET")
		}
		return v.secret, nil
	}
	if v.jwks == nil {
		return nil, errors.New("asymmetric tokens need BRIGHTRUN_SUPABASE_JWKS_URL")
	}
	return v.jwks.Keyfunc(t)
}

// Verify checks a JWT and returns its principal.
func (v *Supabase) Verify(token string) (Principal, error) {
	var c supabaseClaims
	_, err := jwt.ParseWithClaims(token, &c, v.key,
		jwt.WithValidMethods([]string{"HS256", "RS256", "ES256"}),
		jwt.WithAudience("authenticated"),
		jwt.WithIssuer(v.issuer),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		msg := "the access token is not valid"
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "the access token has expired: refresh your session"
		}
		return Principal{}, &apperr.Error{Kind: apperr.KindUnauthorized, Message: msg, Err: err}
	}
	if c.Subject == "" {
		return Principal{}, apperr.Unauthorized("the access token has no subject")
	}
	return Principal{UserID: c.Subject, Email: c.Email, Via: "jwt"}, nil
}

// CookieToken extracts the access token from Supabase's auth cookie
// (sb-<project>-auth-token, possibly split into .0, .1 … chunks, holding
// JSON or "base64-"-prefixed JSON of the session).
func CookieToken(r *http.Request) string {
	chunks := map[string]map[int]string{}
	for _, c := range r.Cookies() {
		name := c.Name
		if !strings.HasPrefix(name, "sb-") {
			continue
		}
		idx := -1
		if i := strings.LastIndex(name, "."); i > 0 {
			if n, err := strconv.Atoi(name[i+1:]); err == nil {
				idx, name = n, name[:i]
			}
		}
		if !strings.HasSuffix(name, "-auth-token") {
			continue
		}
		if chunks[name] == nil {
			chunks[name] = map[int]string{}
		}
		chunks[name][idx] = c.Value
	}
	for _, parts := range chunks {
		idx := make([]int, 0, len(parts))
		for i := range parts {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		var b strings.Builder
		for _, i := range idx {
			b.WriteString(parts[i])
		}
		if tok := parseSessionCookie(b.String()); tok != "" {
			return tok
		}
	}
	return ""
}

func parseSessionCookie(v string) string {
	if u, err := url.QueryUnescape(v); err == nil {
		v = u
	}
	if rest, ok := strings.CutPrefix(v, "base64-"); ok {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(rest, "="))
		if err != nil {
			return ""
		}
		v = string(b)
	}
	var obj struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal([]byte(v), &obj) == nil && obj.AccessToken != "" {
		return obj.AccessToken
	}
	var arr []any
	if json.Unmarshal([]byte(v), &arr) == nil && len(arr) > 0 {
		if s, ok := arr[0].(string); ok {
			return s
		}
	}
	return ""
}
