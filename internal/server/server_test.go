package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// sqlite is enough here: routing, headers and client addresses do not
// depend on the engine.
func sqlite() testdb.Engine { return testdb.Engines()[0] }

// login posts a wrong password for email with the given forwarded address
// ("" for none) and returns the status.
func login(t *testing.T, s *testserver.Server, email, xff string) int {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": "not the password"})
	req, _ := http.NewRequest("POST", s.URL+"/api/auth/login", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return s.NewClient(t).Send(req).Status
}

// The per-IP limit is 4 × 5 failures; each attempt uses a new email so only
// the IP key can lock.
const ipLimit = 20

func TestLoginThrottleIgnoresForwardedForByDefault(t *testing.T) {
	s := testserver.Start(t, sqlite(), testserver.Options{})
	for i := 0; i < ipLimit; i++ {
		// A different spoofed address each time: all count against the peer.
		if st := login(t, s, fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("198.51.100.%d", i+1)); st != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, st)
		}
	}
	if st := login(t, s, "fresh@example.com", "198.51.100.200"); st != 429 {
		t.Fatalf("a spoofed X-Forwarded-For escaped the per-IP throttle: %d, want 429", st)
	}
}

func TestLoginThrottleBehindTrustedProxyIsPerForwardedClient(t *testing.T) {
	s := testserver.Start(t, sqlite(), testserver.Options{Env: map[string]string{"BRIGHTRUN_TRUSTED_PROXIES": "127.0.0.0/8,::1/128"}})
	for i := 0; i < ipLimit; i++ {
		// The client wrote a fake first hop; the proxy appended the real one.
		if st := login(t, s, fmt.Sprintf("a%d@example.com", i), fmt.Sprintf("10.9.9.%d, 203.0.113.1", i+1)); st != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, st)
		}
	}
	if st := login(t, s, "a-next@example.com", "203.0.113.1"); st != 429 {
		t.Fatalf("forwarded client 203.0.113.1 after %d failures: %d, want 429", ipLimit, st)
	}
	if st := login(t, s, "b@example.com", "203.0.113.2"); st != 401 {
		t.Fatalf("another forwarded client shares the lock: %d, want 401", st)
	}
}

func TestMetricsLabelAuthenticatedRoutesWithTheirPattern(t *testing.T) {
	s := testserver.Start(t, sqlite(), testserver.Options{})
	c := s.SignUp(t, "metrics@example.com")
	c.MustJSON("GET", "/api/auth/me", nil, 200, nil)
	c.MustJSON("GET", "/api/tokens", nil, 200, nil)
	r := s.NewClient(t).Do("GET", "/metrics", nil)
	body := string(r.Body)
	for _, want := range []string{
		`brightrun_http_requests_total{method="GET",route="GET /api/auth/me",status="200"} 1`,
		`brightrun_http_requests_total{method="GET",route="GET /api/tokens",status="200"} 1`,
		`brightrun_http_requests_total{method="POST",route="POST /api/auth/signup",status="201"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, `route="unmatched"`) {
		t.Errorf("a routed request was labelled unmatched:\n%s", grep(body, "brightrun_http_requests_total"))
	}
}

func TestContentSecurityPolicyConnectSrc(t *testing.T) {
	s := testserver.Start(t, sqlite(), testserver.Options{})
	r := s.NewClient(t).Do("GET", "/login", nil)
	csp := r.Header.Get("Content-Security-Policy")
	want := "connect-src 'self' " + s.URL + ";"
	if !strings.Contains(csp, want) {
		t.Fatalf("CSP %q lacks %q", csp, want)
	}
	if anyScheme.MatchString(csp) {
		t.Fatalf("CSP still allows any origin: %q", csp)
	}
}

// anyScheme is a bare scheme source such as "https:" (any host).
var anyScheme = regexp.MustCompile(`\bhttps?:(\s|;|$)`)

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
