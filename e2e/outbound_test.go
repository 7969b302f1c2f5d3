package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// smtpSink is an SMTP server (go-smtp) that keeps every message it receives.
type smtpSink struct {
	mu   sync.Mutex
	msgs []sinkMsg
}

type sinkMsg struct {
	From string
	To   []string
	Data []byte
}

type sinkSession struct {
	s   *smtpSink
	cur sinkMsg
}

func (k *smtpSink) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &sinkSession{s: k}, nil }

func (s *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error { s.cur.From = from; return nil }
func (s *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.s.mu.Lock()
	s.s.msgs = append(s.s.msgs, s.cur)
	s.s.mu.Unlock()
	s.cur = sinkMsg{}
	return nil
}
func (s *sinkSession) Reset()        { s.cur = sinkMsg{} }
func (s *sinkSession) Logout() error { return nil }

func startSMTP(t *testing.T) (*smtpSink, string) {
	sink := &smtpSink{}
	srv := gosmtp.NewServer(sink)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink, ln.Addr().String()
}

// verify is the receiver's check exactly as docs/notifications.md gives it.
func verify(secret string, r *http.Request, body []byte) bool {
	ts := r.Header.Get("X-BrightRun-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := "v1=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(r.Header.Get("X-BrightRun-Signature")))
}

func TestOutboundWebhookRetriesAndEmail(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		sink, smtpAddr := startSMTP(t)
		s := testserver.Start(t, e, testserver.Options{App: app.Options{OutboundEvery: -1},
			// The receiver is on loopback: the operator allows it here.
			Env: map[string]string{"BRIGHTRUN_SMTP_ADDR": smtpAddr, "BRIGHTRUN_SMTP_FROM": "brightrun@example.com", "BRIGHTRUN_WEBHOOK_ALLOW_PRIVATE": "true"}})
		c := s.SignUp(t, "hooks@example.com")

		var mu sync.Mutex
		secret := ""
		var got []struct {
			delivery string
			valid    bool
			status   int
			body     string
		}
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			status := http.StatusInternalServerError
			if len(got) > 0 {
				status = http.StatusOK
			}
			got = append(got, struct {
				delivery string
				valid    bool
				status   int
				body     string
			}{r.Header.Get("X-BrightRun-Delivery"), verify(secret, r, body), status, string(body)})
			w.WriteHeader(status)
		}))
		defer recv.Close()

		// Validation: only http(s) URLs.
		if r := c.Do("PUT", "/api/settings/notifications", map[string]any{"webhook_url": "ftp://x.example.com/"}); r.Status != 400 {
			t.Fatalf("ftp URL: %d %s", r.Status, r.Body)
		}
		var set struct {
			Settings struct {
				WebhookURL    string `json:"webhook_url"`
				WebhookSecret string `json:"webhook_secret"`
				EmailEnabled  bool   `json:"email_enabled"`
				EmailAddress  string `json:"email_address"`
			}
		}
		c.MustJSON("PUT", "/api/settings/notifications", map[string]any{"webhook_url": recv.URL + "/hook", "email_enabled": true, "email_address": "me@example.com"}, 200, &set)
		if !strings.HasPrefix(set.Settings.WebhookSecret, "whsec_") || !set.Settings.EmailEnabled {
			t.Fatalf("settings: %+v", set.Settings)
		}
		first := set.Settings.WebhookSecret
		c.MustJSON("POST", "/api/settings/notifications/rotate-secret", map[string]any{}, 200, &set)
		if set.Settings.WebhookSecret == first || !strings.HasPrefix(set.Settings.WebhookSecret, "whsec_") {
			t.Fatalf("rotate: %q → %q", first, set.Settings.WebhookSecret)
		}
		mu.Lock()
		secret = set.Settings.WebhookSecret
		mu.Unlock()

		// The notification happens a second after the settings were saved
		// (the store takes the time from the caller: no sleep needed).
		n, err := s.App.Store.NotificationCreate(store.AsSystem(context.Background()), store.NotificationCreateParams{At: time.Now().UTC().Add(time.Second), UserID: c.UserID,
			Type: "job_completed", Priority: "high", Title: "Job finished: ünïcode run", Message: "Your model is ready.", ActionURL: "/training/jobs/abc", Metadata: notifydoc.Job("abc")})
		if err != nil {
			t.Fatal(err)
		}
		ob := s.App.Outbound
		now := time.Now().UTC()
		ob.Now = func() time.Time { return now }
		ctx := context.Background()
		tick := func() {
			t.Helper()
			if err := ob.Tick(ctx); err != nil {
				t.Fatalf("tick: %v", err)
			}
		}
		tick() // webhook: 500; email: sent
		tick() // not due yet: nothing
		now = now.Add(11 * time.Second)
		tick() // webhook: 200
		for i := 0; i < 5; i++ {
			now = now.Add(2 * time.Hour)
			tick() // nothing more
		}
		mu.Lock()
		if len(got) != 2 || got[0].status != 500 || got[1].status != 200 || got[0].delivery != got[1].delivery {
			t.Fatalf("webhook requests: %+v", got)
		}
		for _, g := range got {
			if !g.valid || !strings.Contains(g.body, `"id":"`+n.ID+`"`) || !strings.Contains(g.body, `"action_url":"`+s.URL+`/training/jobs/abc"`) || !strings.Contains(g.body, `"metadata":{"job_id":"abc"}`) {
				t.Fatalf("request not verified or wrong payload: %+v", g)
			}
		}
		mu.Unlock()

		var log struct {
			Deliveries []struct {
				ID, Channel, Status, Target string
				Attempts                    int
				ResponseCode                *int   `json:"response_code"`
				NotificationID              string `json:"notification_id"`
			}
		}
		c.MustJSON("GET", "/api/settings/notifications/deliveries", nil, 200, &log)
		if len(log.Deliveries) != 2 {
			t.Fatalf("log: %+v", log)
		}
		for _, d := range log.Deliveries {
			switch d.Channel {
			case "webhook":
				if d.Status != "delivered" || d.Attempts != 2 || d.ResponseCode == nil || *d.ResponseCode != 200 || d.ID != got[0].delivery {
					t.Fatalf("webhook log: %+v", d)
				}
			case "email":
				if d.Status != "delivered" || d.Attempts != 1 || d.Target != "me@example.com" {
					t.Fatalf("email log: %+v", d)
				}
			}
		}

		sink.mu.Lock()
		msgs := append([]sinkMsg(nil), sink.msgs...)
		sink.mu.Unlock()
		if len(msgs) != 1 || msgs[0].From != "brightrun@example.com" || len(msgs[0].To) != 1 || msgs[0].To[0] != "me@example.com" {
			t.Fatalf("emails: %+v", msgs)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(msgs[0].Data)))
		if err != nil {
			t.Fatal(err)
		}
		subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		body, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
		if subj != "[BrightRun] Job finished: ünïcode run" || !strings.Contains(string(body), "Your model is ready.") || !strings.Contains(string(body), s.URL+"/training/jobs/abc") {
			t.Fatalf("email: %q\n%s", subj, body)
		}

		page := c.Do("GET", "/settings/notifications", nil)
		if page.Status != 200 || !strings.Contains(string(page.Body), "Delivery log") || !strings.Contains(string(page.Body), "delivered") {
			t.Fatalf("page: %d", page.Status)
		}
	})
}

func TestOutboundEmailRefusedWithoutSMTP(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{App: app.Options{OutboundEvery: -1}})
		c := s.SignUp(t, "nosmtp@example.com")
		r := c.Do("PUT", "/api/settings/notifications", map[string]any{"email_enabled": true})
		if r.Status != 400 || !strings.Contains(string(r.Body), "BRIGHTRUN_SMTP_ADDR") {
			t.Fatalf("email without SMTP: %d %s", r.Status, r.Body)
		}
		if r := c.Do("POST", "/api/settings/notifications/rotate-secret", map[string]any{}); r.Status != 409 {
			t.Fatalf("rotate without URL: %d %s", r.Status, r.Body)
		}
	})
}

// TestWebhookToInternalAddressRefusedByDefault: with no operator setting a
// webhook to a real loopback receiver, to localhost or to the cloud metadata
// address is refused when saved; a range the operator allows is accepted and
// delivered.
func TestWebhookToInternalAddressRefusedByDefault(t *testing.T) {
	var hits atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(recv.Close)
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{App: app.Options{OutboundEvery: -1}})
		c := s.SignUp(t, "ssrf@example.com")
		for _, u := range []string{recv.URL + "/hook", "http://localhost:9/x", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.1]/", "http://[fd00::1]:8080/"} {
			r := c.Do("PUT", "/api/settings/notifications", map[string]any{"webhook_url": u})
			if _, det := r.ErrorBody(); r.Status != 400 || det["webhook_url"] == nil || !strings.Contains(string(r.Body), "private") {
				t.Fatalf("%s: %d %s", u, r.Status, r.Body)
			}
		}
		c.MustJSON("PUT", "/api/settings/notifications", map[string]any{"webhook_url": "https://hooks.example.com/brightrun"}, 200, nil)

		allowed := testserver.Start(t, e, testserver.Options{App: app.Options{OutboundEvery: -1}, Env: map[string]string{"BRIGHTRUN_WEBHOOK_ALLOW_CIDRS": "127.0.0.1/32"}})
		a := allowed.SignUp(t, "internal@example.com")
		a.MustJSON("PUT", "/api/settings/notifications", map[string]any{"webhook_url": recv.URL + "/hook"}, 200, nil)
		ob := allowed.App.Outbound
		// Created after the save, so forwarded (the store compares
		// created_at >= the settings' updated_at).
		if _, err := allowed.App.Store.NotificationCreate(store.AsSystem(context.Background()), store.NotificationCreateParams{At: time.Now().UTC(), UserID: a.UserID,
			Type: "job_completed", Priority: "high", Title: "Done", Message: "ok"}); err != nil {
			t.Fatal(err)
		}
		before := hits.Load()
		if err := ob.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		if hits.Load() != before+1 {
			t.Fatalf("allowed receiver hit %d times", hits.Load()-before)
		}
	})
}
