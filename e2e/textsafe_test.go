package e2e

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// TestUntrustedTextIsStored sends the text that used to make PostgreSQL answer
// 500 (a NUL byte, a character split by a byte cut, invalid UTF-8) from an
// agent and from a browser, on both engines: it is stored, cleaned, and the
// job's failure is recorded.
func TestUntrustedTextIsStored(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		u, j, ag := claimedJob(t, s, "text@example.com")
		// 3-byte characters: a cut at 4000 bytes would split one.
		long := "nul\x00here " + strings.Repeat("€", 5000)
		ag.MustJSON("POST", "/api/agent/jobs/"+j.ID+"/events", map[string]any{"events": []map[string]any{{"level": "warn", "message": long}}}, 200, nil)
		ag.MustJSON("POST", "/api/agent/jobs/"+j.ID+"/fail", map[string]any{"error_class": "internal", "message": long, "traceback": long, "retryable": false}, 200, nil)

		var detail struct {
			Job struct {
				Status       string  `json:"status"`
				ErrorMessage *string `json:"error_message"`
			} `json:"job"`
			Events []struct {
				Message string `json:"message"`
			} `json:"events"`
		}
		u.MustJSON("GET", "/api/jobs/"+j.ID, nil, 200, &detail)
		job := struct {
			Status, ErrorMessage string
			Events               []struct {
				Message string `json:"message"`
			}
		}{Status: detail.Job.Status, Events: detail.Events}
		if detail.Job.ErrorMessage != nil {
			job.ErrorMessage = *detail.Job.ErrorMessage
		}
		if job.Status != "failed" {
			t.Fatalf("the failure was not recorded: status %q", job.Status)
		}
		if !strings.HasPrefix(job.ErrorMessage, "nulhere €") || strings.ContainsRune(job.ErrorMessage, 0) || !utf8.ValidString(job.ErrorMessage) {
			t.Fatalf("error message not cleaned: %.60q", job.ErrorMessage)
		}
		found := false
		for _, ev := range job.Events {
			if strings.HasPrefix(ev.Message, "nulhere") {
				found = true
				if n := utf8.RuneCountInString(ev.Message); n > 4000 || !strings.HasSuffix(ev.Message, "…") {
					t.Fatalf("event message: %d runes, ends %q", n, ev.Message[len(ev.Message)-6:])
				}
			}
		}
		if !found {
			t.Fatalf("the agent's event was not stored: %+v", job.Events)
		}

		// A User-Agent with invalid UTF-8 and multi-byte characters past the
		// 500 cut: sign-up and login both succeed.
		ua := "\xffagent " + strings.Repeat("€", 400)
		for _, path := range []string{"/api/auth/signup", "/api/auth/login"} {
			c := s.NewClient(t)
			req, err := http.NewRequest("POST", c.Base+path, strings.NewReader(`{"email":"ua@example.com","password":"correct horse battery"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", ua)
			req.Header.Set("Origin", c.Base)
			if r := c.Send(req); r.Status >= 300 {
				t.Fatalf("%s with an odd User-Agent: %d %s", path, r.Status, r.Body)
			}
		}
	})
}
