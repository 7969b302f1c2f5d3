package outbound

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the outbound notification settings routes.
type Handlers struct {
	Svc *Service
	UI  *ui.Renderer
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /api/settings/notifications", h.get)
	m.API("PUT /api/settings/notifications", h.put)
	m.API("POST /api/settings/notifications/rotate-secret", h.rotate)
	m.API("GET /api/settings/notifications/deliveries", h.deliveries)
	m.Page("GET /settings/notifications", h.page)
}

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

func (h *Handlers) view(c store.NotificationChannels) Settings {
	v := Settings{WebhookURL: c.WebhookURL, WebhookSecret: c.WebhookSecret, EmailEnabled: c.EmailEnabled, EmailAddress: c.EmailAddress, EmailAvailable: h.Svc.SMTP.Enabled(), WebhookFormat: c.WebhookFormat}
	if !c.UpdatedAt.IsZero() {
		v.UpdatedAt = c.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return v
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	c, err := h.Svc.Store.ChannelsGet(r.Context(), auth.UserID(r))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"settings": h.view(c)})
}

// NewSecret returns a fresh webhook signing secret (whsec_ + 32 random bytes in hex).
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + hex.EncodeToString(b)
}

type putReq struct {
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

func (h *Handlers) put(w http.ResponseWriter, r *http.Request) error {
	var req putReq
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	return h.save(r.Context(), w, r, req)
}

func (h *Handlers) save(ctx context.Context, w http.ResponseWriter, r *http.Request, req putReq) error {
	uid := auth.UserID(r)
	req.WebhookURL = strings.TrimSpace(req.WebhookURL)
	req.EmailAddress = strings.TrimSpace(req.EmailAddress)
	bad := map[string]string{}
	if req.WebhookURL != "" {
		if msg := h.Svc.Policy.ValidWebhookURL(req.WebhookURL); msg != "" {
			bad["webhook_url"] = msg
		}
	}
	if req.EmailEnabled && !h.Svc.SMTP.Enabled() {
		bad["email_enabled"] = "email notifications are not available: this server has no SMTP server configured (the operator sets BRIGHTRUN_SMTP_ADDR and BRIGHTRUN_SMTP_FROM)"
	}
	if req.EmailAddress == "" && req.EmailEnabled {
		if p, ok := auth.PrincipalFrom(ctx); ok {
			req.EmailAddress = p.Email
		}
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
	cur, err := h.Svc.Store.ChannelsGet(ctx, uid)
	if err != nil {
		return err
	}
	c := store.NotificationChannels{UserID: uid, WebhookURL: req.WebhookURL, WebhookSecret: cur.WebhookSecret, EmailEnabled: req.EmailEnabled, EmailAddress: req.EmailAddress,
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
	c.UpdatedAt = h.Svc.Now().UTC()
	c, err = h.Svc.Store.ChannelsPut(ctx, c)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"settings": h.view(c)})
}

func (h *Handlers) rotate(w http.ResponseWriter, r *http.Request) error {
	uid := auth.UserID(r)
	c, err := h.Svc.Store.ChannelsGet(r.Context(), uid)
	if err != nil {
		return err
	}
	if c.WebhookURL == "" {
		return apperr.Conflict("set a webhook URL first; its secret is created then")
	}
	c.WebhookSecret = NewSecret()
	c.UpdatedAt = h.Svc.Now().UTC()
	if c, err = h.Svc.Store.ChannelsPut(r.Context(), c); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"settings": h.view(c)})
}

func (h *Handlers) log(r *http.Request) ([]store.Delivery, error) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return nil, apperr.Validation("validation failed", map[string]string{"limit": "use a whole number from 1 to 200"})
		}
		limit = n
	}
	l, err := h.Svc.Store.DeliveriesList(r.Context(), auth.UserID(r), limit)
	if l == nil {
		l = []store.Delivery{}
	}
	return l, err
}

func (h *Handlers) deliveries(w http.ResponseWriter, r *http.Request) error {
	l, err := h.log(r)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"deliveries": l})
}

func (h *Handlers) page(w http.ResponseWriter, r *http.Request) error {
	c, err := h.Svc.Store.ChannelsGet(r.Context(), auth.UserID(r))
	if err != nil {
		return err
	}
	l, err := h.log(r)
	if err != nil {
		return err
	}
	p := ui.PageFor(r, "Notification settings", "settings", map[string]any{"S": h.view(c), "Deliveries": l, "Backoff": Backoff, "MaxAttempts": MaxAttempts})
	p.Page = "settings-notifications"
	return h.UI.Render(w, http.StatusOK, "settings_notifications", p)
}
