package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash format %q", h)
	}
	h2, _ := HashPassword("correct horse")
	if h == h2 {
		t.Fatal("hashes must be salted")
	}
	if ok, err := VerifyPassword("correct horse", h); !ok || err != nil {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword("correct horsE", h); ok {
		t.Fatal("wrong password accepted")
	}
	if _, err := VerifyPassword("x", "$2a$10$bcrypt"); err == nil {
		t.Fatal("foreign hash format must error")
	}
}

func TestAPITokenShape(t *testing.T) {
	tok, hash, prefix := NewAPIToken()
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) < 40 || !strings.HasPrefix(tok, prefix) || hash != HashSecret(tok) || strings.Contains(hash, tok) {
		t.Fatalf("token %q hash %q prefix %q", tok, hash, prefix)
	}
}

const projectURL = "https://abc.supabase.co"

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "9a1f7c8e-0000-4000-8000-000000000001", "aud": "authenticated", "iss": projectURL + "/auth/v1",
		"exp": time.Now().Add(time.Hour).Unix(), "email": "sb@example.com", "role": "authenticated"}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestSupabaseHS256(t *testing.T) {
	secret := []byte("super-secret-jwt-token-with-at-least-32-characters")
	v, err := NewSupabase(context.Background(), projectURL, string(secret), "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, "", claims(nil)))
	if err != nil || p.UserID != "9a1f7c8e-0000-4000-8000-000000000001" || p.Email != "sb@example.com" {
		t.Fatalf("valid token: %v %+v", err, p)
	}
	bad := map[string]string{
		"expired":      sign(t, jwt.SigningMethodHS256, secret, "", claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })),
		"no exp":       sign(t, jwt.SigningMethodHS256, secret, "", claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"wrong aud":    sign(t, jwt.SigningMethodHS256, secret, "", claims(func(c jwt.MapClaims) { c["aud"] = "anon" })),
		"wrong issuer": sign(t, jwt.SigningMethodHS256, secret, "", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.supabase.co/auth/v1" })),
		"wrong secret": sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-another"), "", claims(nil)),
		"no sub":       sign(t, jwt.SigningMethodHS256, secret, "", claims(func(c jwt.MapClaims) { delete(c, "sub") })),
		"alg none":     sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil)),
		"garbage":      "not.a.jwt",
	}
	for name, tok := range bad {
		if _, err := v.Verify(tok); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Tampered payload.
	good := sign(t, jwt.SigningMethodHS256, secret, "", claims(nil))
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), "9a1f7c8e", "00000000", 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	if _, err := v.Verify(strings.Join(parts, ".")); err == nil {
		t.Error("tampered payload accepted")
	}
}

// TestSupabaseJWKS serves a real JWKS over HTTP with an ES256 key, as Supabase
// projects with asymmetric signing keys do.
func TestSupabaseJWKS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b64 := base64.RawURLEncoding
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
		"x": b64.EncodeToString(key.PublicKey.X.FillBytes(make([]byte, 32))), "y": b64.EncodeToString(key.PublicKey.Y.FillBytes(make([]byte, 32))),
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(jwks) }))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewSupabase(ctx, projectURL, "", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(sign(t, jwt.SigningMethodES256, key, "k1", claims(nil)))
	if err != nil || p.UserID == "" {
		t.Fatalf("ES256 via JWKS: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, other, "k1", claims(nil))); err == nil {
		t.Fatal("token signed by an unknown key accepted")
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte("guess-guess-guess-guess-guess-guess"), "", claims(nil))); err == nil {
		t.Fatal("HS256 accepted without a configured secret")
	}
}

func TestCookieToken(t *testing.T) {
	session := `{"access_token":"tok123","refresh_token":"r"}`
	enc := "base64-" + base64.RawURLEncoding.EncodeToString([]byte(session))
	cases := map[string][]*http.Cookie{
		"json":    {{Name: "sb-abc-auth-token", Value: url.QueryEscape(session)}},
		"base64":  {{Name: "sb-abc-auth-token", Value: enc}},
		"chunked": {{Name: "sb-abc-auth-token.1", Value: enc[10:]}, {Name: "sb-abc-auth-token.0", Value: enc[:10]}},
		"array":   {{Name: "sb-abc-auth-token", Value: url.QueryEscape(`["tok123","r",null,null,null]`)}},
	}
	for name, cs := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		for _, c := range cs {
			r.AddCookie(c)
		}
		if got := CookieToken(r); got != "tok123" {
			t.Errorf("%s: got %q", name, got)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: "other", Value: url.QueryEscape(session)})
	if CookieToken(r) != "" {
		t.Error("unrelated cookie used")
	}
}
