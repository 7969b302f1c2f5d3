package outbound

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// The settings rules: which webhook and email channels a user may set, the
// signing secret's life cycle, and the delivery log's page size. Sending
// lives in outbound.go.

// Settings is the API's view of a user's channels.
type Settings struct {
	WebhookURL     string `json:"webhook_url"`
	WebhookSecret  string `json:"webhook_secret"`
	EmailEnabled   bool   `json:"email_enabled"`
	EmailAddress   string `json:"email_address"`
	EmailAvailable bool   `json:"email_available"`
	WebhookFormat  string `json:"webhook_format"`
	UpdatedAt      string `json:"updated_at,omitempty"`
}

func (s *Service) settings(c store.NotificationChannels) Settings {
	v := Settings{WebhookURL: c.WebhookURL, WebhookSecret: c.WebhookSecret, EmailEnabled: c.EmailEnabled, EmailAddress: c.EmailAddress, EmailAvailable: s.SMTP.Enabled(), WebhookFormat: c.WebhookFormat}
	if !c.UpdatedAt.IsZero() {
		v.UpdatedAt = c.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return v
}

// Settings returns the user's channels.
func (s *Service) Settings(ctx context.Context, userID string) (Settings, error) {
	c, err := s.Store.ChannelsGet(ctx, userID)
	if err != nil {
		return Settings{}, err
	}
	return s.settings(c), nil
}

// NewSecret returns a fresh webhook signing secret (whsec_ + 32 random bytes in hex).
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + hex.EncodeToString(b)
}

// SettingsRequest replaces a user's channels.
type SettingsRequest struct {
	WebhookURL   string `json:"webhook_url"`
	EmailEnabled bool   `json:"email_enabled"`
	EmailAddress string `json:"email_address"`
	// WebhookFormat is brightrun or standard (absent: unchanged).
	WebhookFormat *string `json:"webhook_format"`
}

// ValidWebhookURL checks a webhook URL: absolute http(s), at most 2000
// characters, and not a literal address (or localhost) the policy refuses.
// Names are checked again at connect time, after DNS.
func (p Policy) ValidWebhookURL(raw string) string {
	if len(raw) > 2000 {
		return "use at most 2000 characters"
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return "use an absolute http:// or https:// URL, such as https://hooks.example.com/brightrun"
	}
	if u.User != nil {
		return "put credentials in the URL's path or query, not before the host"
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	refused := "this server does not send webhooks to loopback, private or link-local addresses; use a public address (the operator can allow internal receivers with BRIGHTRUN_WEBHOOK_ALLOW_CIDRS)"
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.Allowed(a) {
			return refused
		}
	} else if (host == "localhost" || strings.HasSuffix(host, ".localhost")) && !p.Allowed(netip.MustParseAddr("127.0.0.1")) {
		return refused
	}
	return ""
}

// validate trims req and checks every field; an enabled email without an
// address goes to accountEmail (the user's sign-in address).
func (s *Service) validate(req *SettingsRequest, accountEmail string) error {
	req.WebhookURL = strings.TrimSpace(req.WebhookURL)
	req.EmailAddress = strings.TrimSpace(req.EmailAddress)
	bad := map[string]string{}
	if req.WebhookURL != "" {
		if msg := s.Policy.ValidWebhookURL(req.WebhookURL); msg != "" {
			bad["webhook_url"] = msg
		}
	}
	if req.EmailEnabled && !s.SMTP.Enabled() {
		bad["email_enabled"] = "email notifications are not available: this server has no SMTP server configured (the operator sets BRIGHTRUN_SMTP_ADDR and BRIGHTRUN_SMTP_FROM)"
	}
	if req.EmailAddress == "" && req.EmailEnabled {
		req.EmailAddress = accountEmail
	}
	if req.EmailAddress != "" {
		if a, err := mail.ParseAddress(req.EmailAddress); err != nil || a.Address != req.EmailAddress || len(req.EmailAddress) > 254 {
			bad["email_address"] = "use a plain email address such as you@example.com"
		}
	}
	if req.EmailEnabled && req.EmailAddress == "" {
		bad["email_address"] = "give the address to send to"
	}
	if req.WebhookFormat != nil && *req.WebhookFormat != FormatBrightRun && *req.WebhookFormat != FormatStandard {
		bad["webhook_format"] = "use brightrun (BrightRun's payload and X-BrightRun-Signature) or standard (Standard Webhooks, OpenAI's event shape)"
	}
	if len(bad) > 0 {
		return apperr.Validation("validation failed", bad)
	}
	return nil
}

// SaveSettings validates and stores the user's channels. The signing secret
// is kept while there is a webhook URL, created with the first one and
// dropped with the last.
func (s *Service) SaveSettings(ctx context.Context, userID, accountEmail string, req SettingsRequest) (Settings, error) {
	if err := s.validate(&req, accountEmail); err != nil {
		return Settings{}, err
	}
	cur, err := s.Store.ChannelsGet(ctx, userID)
	if err != nil {
		return Settings{}, err
	}
	c := store.NotificationChannels{UserID: userID, WebhookURL: req.WebhookURL, WebhookSecret: cur.WebhookSecret, EmailEnabled: req.EmailEnabled, EmailAddress: req.EmailAddress,
		WebhookFormat: cur.WebhookFormat}
	if req.WebhookFormat != nil {
		c.WebhookFormat = *req.WebhookFormat
	}
	switch {
	case c.WebhookURL == "":
		c.WebhookSecret = ""
	case c.WebhookSecret == "":
		c.WebhookSecret = NewSecret()
	}
	c.UpdatedAt = s.Now().UTC()
	if c, err = s.Store.ChannelsPut(ctx, c); err != nil {
		return Settings{}, err
	}
	return s.settings(c), nil
}

// RotateSecret gives the user's webhook a new signing secret.
func (s *Service) RotateSecret(ctx context.Context, userID string) (Settings, error) {
	c, err := s.Store.ChannelsGet(ctx, userID)
	if err != nil {
		return Settings{}, err
	}
	if c.WebhookURL == "" {
		return Settings{}, apperr.Conflict("set a webhook URL first; its secret is created then")
	}
	c.WebhookSecret = NewSecret()
	c.UpdatedAt = s.Now().UTC()
	if c, err = s.Store.ChannelsPut(ctx, c); err != nil {
		return Settings{}, err
	}
	return s.settings(c), nil
}

// Delivery log page sizes.
const (
	DefaultDeliveries = 50
	MaxDeliveries     = 200
)

// Deliveries lists the user's newest deliveries (limit 1..MaxDeliveries).
func (s *Service) Deliveries(ctx context.Context, userID string, limit int) ([]store.Delivery, error) {
	if limit < 1 || limit > MaxDeliveries {
		return nil, apperr.Validation("validation failed", map[string]string{"limit": "use a whole number from 1 to 200"})
	}
	l, err := s.Store.DeliveriesList(ctx, userID, limit)
	if l == nil {
		l = []store.Delivery{}
	}
	return l, err
}
