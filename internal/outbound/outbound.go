// Package outbound sends notifications out of BrightRun: signed webhooks,
// retried with backoff, and email through the configured SMTP server. Every
// attempt is recorded in the user's delivery log.
package outbound

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
)

// Backoff is the wait after each failed attempt; after MaxAttempts the
// delivery is marked failed.
var Backoff = []time.Duration{10 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour}

// MaxAttempts is how many times a delivery is tried.
const MaxAttempts = 6

// Timeout bounds one webhook request or SMTP conversation.
const Timeout = 10 * time.Second

// SMTPConfig is the operator's mail server (BRIGHTRUN_SMTP_*).
type SMTPConfig struct {
	Addr     string // host:port
	From     string
	Username string
	Password string
}

// Enabled reports whether email can be sent.
func (c SMTPConfig) Enabled() bool { return c.Addr != "" && c.From != "" }

// Service enqueues and sends outbound deliveries. Now is injectable.
type Service struct {
	Store store.Store
	Log   *slog.Logger
	Now   func() time.Time
	HTTP  *http.Client // nil: NewHTTPClient()
	SMTP  SMTPConfig
	// PublicURL makes action URLs absolute in payloads and emails.
	PublicURL string
	// Policy decides which addresses webhooks may reach (default: public only).
	Policy Policy
	// Events maps notifications onto OpenAI events for Standard Webhooks
	// channels (nil: every notification is sent as brightrun.<type>).
	Events EventMapper

	once sync.Once
}

// NewHTTPClient is the webhook client: a 10 s timeout, connections only to
// addresses the policy allows (checked at connect time, after DNS, for every
// hop), no proxy from the environment (it would connect for us, unchecked),
// and redirects followed only on the same scheme and host.
func NewHTTPClient(p Policy) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = p.Dialer().DialContext
	return &http.Client{Timeout: Timeout, Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
			return fmt.Errorf("redirect to another host (%s) refused", req.URL.Host)
		}
		return nil
	}}
}

func (s *Service) client() *http.Client {
	s.once.Do(func() {
		if s.HTTP == nil {
			s.HTTP = NewHTTPClient(s.Policy)
		}
	})
	return s.HTTP
}

// Payload is the JSON body of a webhook.
type Payload struct {
	ID        string             `json:"id"`
	Type      string             `json:"type"`
	Title     string             `json:"title"`
	Message   string             `json:"message"`
	Priority  string             `json:"priority"`
	ActionURL *string            `json:"action_url"`
	Metadata  notifydoc.Metadata `json:"metadata"` // none: {}
	CreatedAt time.Time          `json:"created_at"`
	UserID    string             `json:"user_id"`
}

// Sign is the signature header value: v1=hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

func (s *Service) absolute(u *string) *string {
	if u == nil || *u == "" {
		return u
	}
	if strings.HasPrefix(*u, "/") {
		v := strings.TrimRight(s.PublicURL, "/") + *u
		return &v
	}
	return u
}

// Enqueue creates pending deliveries for new notifications.
func (s *Service) Enqueue(ctx context.Context) (int, error) {
	return s.Store.DeliveriesEnqueue(store.AsSystem(ctx), s.Now().UTC())
}

// SendDue attempts every due delivery (up to limit) and records the results.
func (s *Service) SendDue(ctx context.Context, limit int) (int, error) {
	sys := store.AsSystem(ctx)
	due, err := s.Store.DeliveriesDue(sys, s.Now().UTC(), limit)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make([]error, len(due))
	for i, d := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = s.attempt(sys, d)
		}()
	}
	wg.Wait()
	return len(due), errors.Join(errs...)
}

// Tick enqueues and sends once.
func (s *Service) Tick(ctx context.Context) error {
	_, err := s.Enqueue(ctx)
	if err != nil {
		return err
	}
	_, err = s.SendDue(ctx, 50)
	return err
}

// Worker runs Tick every interval.
func (s *Service) Worker(every time.Duration) func(ctx context.Context) {
	return func(ctx context.Context) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
				s.Log.Warn("outbound notifications", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
}

// attempt sends one delivery and records the outcome.
func (s *Service) attempt(ctx context.Context, d store.DueDelivery) error {
	var code int
	var err error
	permanent := false
	switch d.Channel {
	case "webhook":
		code, err = s.sendWebhook(ctx, d)
	case "email":
		err = s.sendEmail(d)
		var te *textproto.Error
		permanent = errors.As(err, &te) && te.Code >= 500
	default:
		err, permanent = fmt.Errorf("unknown channel %q", d.Channel), true
	}
	now := s.Now().UTC()
	if err == nil {
		return s.Store.DeliveryResult(ctx, d.ID, true, code, "", nil, now)
	}
	msg := reason(err)
	var next *time.Time
	if n := d.Attempts + 1; n < MaxAttempts && !permanent {
		t := now.Add(Backoff[min(n-1, len(Backoff)-1)])
		next = &t
	}
	s.Log.Info("outbound delivery failed", "delivery", d.ID, "channel", d.Channel, "attempt", d.Attempts+1, "err", msg, "retry", next != nil)
	return s.Store.DeliveryResult(ctx, d.ID, false, code, msg, next, now)
}

func (s *Service) payload(d store.DueDelivery) ([]byte, error) {
	n := d.Notification
	var meta notifydoc.Metadata
	if n.Metadata != nil {
		meta = *n.Metadata
	}
	return json.Marshal(Payload{ID: n.ID, Type: n.Type, Title: n.Title, Message: n.Message, Priority: n.Priority,
		ActionURL: s.absolute(n.ActionURL), Metadata: meta, CreatedAt: n.CreatedAt.UTC(), UserID: n.UserID})
}

func (s *Service) sendWebhook(ctx context.Context, d store.DueDelivery) (int, error) {
	if d.WebhookSecret == "" {
		return 0, errors.New("no webhook secret (the webhook was removed)")
	}
	var body []byte
	var eventID string
	var err error
	if d.WebhookFormat == FormatStandard {
		body, eventID, err = s.standardBody(ctx, d)
	} else {
		body, err = s.payload(d)
	}
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(s.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "BrightRun-Webhook/1")
	if d.WebhookFormat == FormatStandard {
		// The id is the event's, so a retried delivery keeps it (receivers deduplicate on it).
		req.Header.Set("webhook-id", eventID)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", SignStandard(d.WebhookSecret, eventID, ts, body))
	} else {
		req.Header.Set("X-BrightRun-Timestamp", ts)
		req.Header.Set("X-BrightRun-Signature", Sign(d.WebhookSecret, ts, body))
		req.Header.Set("X-BrightRun-Delivery", d.ID)
		req.Header.Set("X-BrightRun-Event", d.Notification.Type)
	}
	resp, err := s.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	defer resp.Body.Close()
	// The receiver's body is never read back into the log.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// emailMessage renders the plain-text email of a notification.
func (s *Service) emailMessage(d store.DueDelivery) []byte {
	n := d.Notification
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: BrightRun <%s>\r\n", s.SMTP.From)
	fmt.Fprintf(&b, "To: <%s>\r\n", oneLine(d.Target))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", oneLine("[BrightRun] "+n.Title)))
	fmt.Fprintf(&b, "Date: %s\r\n", s.Now().UTC().Format(time.RFC1123Z))
	host := "brightrun"
	if u, err := url.Parse(s.PublicURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", d.ID, host)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n")
	fmt.Fprintf(&b, "X-BrightRun-Delivery: %s\r\n\r\n", d.ID)
	var text strings.Builder
	text.WriteString(n.Message + "\n\n")
	if a := s.absolute(n.ActionURL); a != nil && *a != "" {
		text.WriteString("Open: " + *a + "\n\n")
	}
	fmt.Fprintf(&text, "Type: %s · priority: %s · %s\n\n", n.Type, n.Priority, n.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"))
	text.WriteString("You get this email because email notifications are on in your BrightRun settings: " + strings.TrimRight(s.PublicURL, "/") + "/settings/notifications\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(text.String(), "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}

func (s *Service) sendEmail(d store.DueDelivery) error {
	if !s.SMTP.Enabled() {
		return errors.New("email is not configured on this server (BRIGHTRUN_SMTP_ADDR)")
	}
	host, _, err := net.SplitHostPort(s.SMTP.Addr)
	if err != nil {
		return err
	}
	conn, err := net.DialTimeout("tcp", s.SMTP.Addr, Timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * Timeout))
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return err
		}
	}
	if s.SMTP.Username != "" {
		// smtp.PlainAuth refuses to send credentials unless the connection
		// is TLS or the server is localhost.
		if err := c.Auth(smtp.PlainAuth("", s.SMTP.Username, s.SMTP.Password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.SMTP.From); err != nil {
		return err
	}
	if err := c.Rcpt(d.Target); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(s.emailMessage(d)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
