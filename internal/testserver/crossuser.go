package testserver

import (
	"net/http"
	"sort"
	"strings"
	"testing"
)

// CrossUserCase is one route requested by a user who does not own the
// resources in its path.
type CrossUserCase struct {
	Route  string // the registered pattern, e.g. "DELETE /api/tokens/{id}"
	Path   string // concrete path with the owner's ids
	Body   any
	Form   string // form body for HTML form routes (sent with the CSRF field)
	Secret []string
	// As overrides the client (e.g. a fresh session for logout routes).
	As *Client
	// After checks the owner's data is unchanged (optional).
	After func(t *testing.T)
}

// CheckCrossUser requests every case as other and asserts the owner's data
// stays invisible and untouched: the answer is a 404 (or a 2xx/3xx that does
// not contain any of the owner's secrets — lists and pages), never a 5xx,
// and never a success that changed the owner's data (After).
func CheckCrossUser(t *testing.T, other *Client, cases []CrossUserCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Route, func(t *testing.T) {
			method, _, _ := strings.Cut(c.Route, " ")
			other := other
			if c.As != nil {
				other = c.As
			}
			var r Response
			if c.Form != "" {
				req, _ := http.NewRequest(method, other.Base+c.Path, strings.NewReader(c.Form+"&csrf_token="+other.CSRF))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r = other.Send(req)
			} else {
				r = other.Do(method, c.Path, c.Body)
			}
			switch {
			case r.Status == http.StatusNotFound:
			case r.Status >= 500:
				t.Fatalf("%s as another user: %d %s", c.Path, r.Status, r.Body)
			case r.Status < 400:
				for _, s := range c.Secret {
					if s != "" && strings.Contains(string(r.Body), s) {
						t.Fatalf("%s as another user leaks %q: %s", c.Path, s, r.Body)
					}
				}
			default:
				if r.Status != http.StatusForbidden && r.Status != http.StatusBadRequest && r.Status != http.StatusConflict {
					t.Fatalf("%s as another user: unexpected %d %s", c.Path, r.Status, r.Body)
				}
			}
			if c.After != nil {
				c.After(t)
			}
		})
	}
}

// MissingCases lists user routes without a cross-user case.
func MissingCases(routes []string, cases []CrossUserCase) []string {
	have := map[string]bool{}
	for _, c := range cases {
		have[c.Route] = true
	}
	var missing []string
	for _, r := range routes {
		if !have[r] {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	return missing
}
