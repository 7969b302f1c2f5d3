package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// TestBadInput sends malformed requests: each gets a clear 4xx that says what
// was wrong, and nothing changes.
func TestBadInput(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		a := s.SignUp(t, "bad@example.com")
		raw := func(method, path, ctype, body string) testserver.Response {
			req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			req.Header.Set("X-CSRF-Token", a.CSRF)
			return a.Send(req)
		}
		cases := []struct {
			name, method, path, ctype, body string
			status                          int
			says                            string
		}{
			{"malformed JSON", "POST", "/api/tokens", "application/json", `{"name": "x"`, 400, "malformed JSON"},
			{"syntax error", "POST", "/api/tokens", "application/json", `{"name": x}`, 400, "malformed JSON at byte"},
			{"unknown field", "POST", "/api/tokens", "application/json", `{"name": "x", "admin": true}`, 400, `unknown field "admin"`},
			{"wrong type", "POST", "/api/tokens", "application/json", `{"name": 5}`, 400, `field "name" must be a string`},
			{"two objects", "POST", "/api/tokens", "application/json", `{"name": "x"}{"name": "y"}`, 400, "single JSON object"},
			{"empty body", "POST", "/api/tokens", "application/json", ``, 400, "empty"},
			{"wrong content type", "POST", "/api/tokens", "text/plain", `{"name": "x"}`, 415, "Content-Type: application/json"},
			{"no content type", "POST", "/api/tokens", "", `{"name": "x"}`, 415, "application/json"},
			{"oversized body", "POST", "/api/tokens", "application/json", `{"name": "` + strings.Repeat("a", 2<<20) + `"}`, 413, "larger than"},
			{"out of range", "POST", "/api/tokens", "application/json", `{"name": "x", "expires_in_days": -3}`, 400, "validation failed"},
			{"name too long", "POST", "/api/tokens", "application/json", `{"name": "` + strings.Repeat("n", 201) + `"}`, 400, "validation failed"},
			{"bad id", "DELETE", "/api/tokens/'%20OR%201=1--", "", ``, 404, "not found"},
			{"unknown route", "GET", "/api/nothing-here", "", ``, 404, "not found"},
			{"wrong method", "PUT", "/api/tokens", "application/json", `{}`, 405, "allowed: GET, POST"},
			{"signup bad email", "POST", "/api/auth/signup", "application/json", `{"email": "not-an-email", "password": "longenough"}`, 400, "validation failed"},
			{"signup short password", "POST", "/api/auth/signup", "application/json", `{"email": "x@example.com", "password": "short"}`, 400, "validation failed"},
			{"NUL in a name", "POST", "/api/tokens", "application/json", `{"name": "a\u0000b"}`, 400, `field "name" contains a NUL byte`},
			{"control character in a name", "POST", "/api/tokens", "application/json", `{"name": "a\u0007b"}`, 400, `field "name" contains`},
			{"duplicate key", "POST", "/api/tokens", "application/json", `{"name": "x", "name": "y"}`, 400, `field "name" appears twice`},
			{"NUL in dataset name", "POST", "/api/datasets", "application/json", `{"name": "d\u0000", "file_name": "d.jsonl", "file_size": 10}`, 400, `field "name" contains a NUL byte`},
			{"NUL in dataset description", "POST", "/api/datasets", "application/json", `{"name": "d", "description": "x\u0000", "file_name": "d.jsonl", "file_size": 10}`, 400, `field "description" contains a NUL byte`},
			{"NUL in file name", "POST", "/api/datasets", "application/json", `{"name": "d", "file_name": "d\u0000.jsonl", "file_size": 10}`, 400, `field "file_name" contains a NUL byte`},
			{"nested duplicate key", "POST", "/api/jobs/estimate", "application/json", `{"preset_id": "balanced", "hyperparameters": {"num_epochs": 1, "num_epochs": 2}}`, 400, `"hyperparameters.num_epochs" appears twice`},
			{"hyperparameter type", "POST", "/api/jobs/estimate", "application/json", `{"preset_id": "balanced", "hyperparameters": {"lora_dropout": "lots"}}`, 400, `field "hyperparameters.lora_dropout" must be a number, not string`},
			{"unknown hyperparameter", "POST", "/api/jobs/estimate", "application/json", `{"preset_id": "balanced", "hyperparameters": {"lora_rnak": 4}}`, 400, `unknown field "hyperparameters.lora_rnak"`},
			{"NUL in search", "GET", "/api/datasets?search=a%00b", "", ``, 400, `query parameter "search" contains a NUL byte`},
			{"malformed query string", "GET", "/api/datasets?search=%zz", "", ``, 400, "malformed query string"},
			{"unknown sort", "GET", "/api/models?sort=cheapest", "", ``, 400, "validation failed"},
			{"NUL in login email", "POST", "/api/auth/login", "application/json", `{"email": "a\u0000@example.com", "password": "longenough"}`, 400, `field "email" contains a NUL byte`},
			{"NUL in login form", "POST", "/login", "application/x-www-form-urlencoded", `email=a%00%40example.com&password=longenough`, 400, ""},
			{"SQL metacharacters", "POST", "/api/auth/login", "application/json", `{"email": "' OR '1'='1", "password": "' OR '1'='1"}`, 401, "incorrect"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := raw(c.method, c.path, c.ctype, c.body)
				msg, _ := r.ErrorBody()
				if r.Status != c.status || !strings.Contains(msg, c.says) {
					t.Fatalf("got %d %q, want %d containing %q (body %.200s)", r.Status, msg, c.status, c.says, r.Body)
				}
			})
		}
		var out struct {
			Tokens []any `json:"tokens"`
		}
		a.MustJSON("GET", "/api/tokens", nil, 200, &out)
		if len(out.Tokens) != 0 {
			t.Fatalf("bad requests created %d tokens", len(out.Tokens))
		}
		var dsl struct{ Total int }
		a.MustJSON("GET", "/api/datasets", nil, 200, &dsl)
		if dsl.Total != 0 {
			t.Fatalf("bad requests created %d datasets", dsl.Total)
		}
		// Pages answer with HTML error pages, not JSON.
		req, _ := http.NewRequest("GET", s.URL+"/no/such/page", nil)
		req.Header.Set("Accept", "text/html")
		r := a.Send(req)
		if r.Status != 404 || !strings.Contains(string(r.Body), "<html") || !strings.Contains(string(r.Body), "Page not found") {
			t.Fatalf("404 page: %d %.300s", r.Status, r.Body)
		}
	})
}

func TestHealthAndMetrics(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.NewClient(t)
	r := c.Do("GET", "/healthz", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"database":"ok"`) {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	r = c.Do("GET", "/metrics", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), "brightrun_http_requests_total") {
		t.Fatalf("metrics: %d %.300s", r.Status, r.Body)
	}
	if r.Header.Get("X-Request-ID") == "" {
		t.Fatal("no request id header")
	}
}
