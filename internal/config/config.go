// Package config builds the one Config struct of brightrun from flags and
// BRIGHTRUN_* environment variables and validates it at start-up.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the server and its admin commands.
type Config struct {
	Addr      string // BRIGHTRUN_ADDR
	PublicURL string // BRIGHTRUN_PUBLIC_URL
	DataDir   string // BRIGHTRUN_DATA_DIR

	DatabaseURL string // BRIGHTRUN_DATABASE_URL: empty = SQLite in the data dir

	Auth              string // BRIGHTRUN_AUTH: local | supabase
	AllowSignup       bool   // BRIGHTRUN_ALLOW_SIGNUP
	SecureCookies     bool   // derived from PublicURL unless BRIGHTRUN_SECURE_COOKIES is set
	SupabaseURL       string // BRIGHTRUN_SUPABASE_URL
	SupabaseJWTSecret string // BRIGHTRUN_SUPABASE_JWT_SECRET (HS256 projects)
	SupabaseJWKSURL   string // BRIGHTRUN_SUPABASE_JWKS_URL (default: SupabaseURL/auth/v1/.well-known/jwks.json)

	Storage           string // BRIGHTRUN_STORAGE: local | s3
	S3Endpoint        string // BRIGHTRUN_S3_ENDPOINT
	S3Region          string // BRIGHTRUN_S3_REGION
	S3AccessKeyID     string // BRIGHTRUN_S3_ACCESS_KEY_ID
	S3SecretAccessKey string // BRIGHTRUN_S3_SECRET_ACCESS_KEY
	S3PathStyle       bool   // BRIGHTRUN_S3_PATH_STYLE
	S3BucketPrefix    string // BRIGHTRUN_S3_BUCKET_PREFIX: prepended to lora-datasets / lora-models

	Catalog string // BRIGHTRUN_CATALOG: path of an operator-edited catalog JSON (default: built in)

	Launchers string // BRIGHTRUN_LAUNCHERS: path of the launchers JSON file (docs/launchers.md; empty: no launchers)

	LocalAgent bool   // BRIGHTRUN_LOCAL_AGENT: start a local trainer agent (embedded default)
	Trainer    string // BRIGHTRUN_TRAINER: path of the brightrun-trainer executable

	SMTPAddr     string // BRIGHTRUN_SMTP_ADDR: host:port of the SMTP server for email notifications (empty = no email)
	SMTPFrom     string // BRIGHTRUN_SMTP_FROM: sender address
	SMTPUsername string // BRIGHTRUN_SMTP_USERNAME: PLAIN auth user (optional)
	SMTPPassword string // BRIGHTRUN_SMTP_PASSWORD

	WebhookAllowPrivate bool   // BRIGHTRUN_WEBHOOK_ALLOW_PRIVATE: let webhooks reach loopback/private/link-local addresses
	WebhookAllowCIDRs   string // BRIGHTRUN_WEBHOOK_ALLOW_CIDRS: comma-separated private ranges webhooks may reach

	TrustedProxies string // BRIGHTRUN_TRUSTED_PROXIES: comma-separated CIDRs of reverse proxies whose X-Forwarded-For / X-Real-IP count

	LogLevel  string // BRIGHTRUN_LOG_LEVEL: debug | info | warn | error
	LogFormat string // BRIGHTRUN_LOG_FORMAT: text | json

	ShutdownTimeout time.Duration // BRIGHTRUN_SHUTDOWN_TIMEOUT
}

// Engine names the database engine the URL selects.
func (c Config) Engine() string {
	if c.DatabaseURL == "" || strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		return "sqlite"
	}
	return "postgres"
}

// SQLitePath is the database file for the SQLite engine.
func (c Config) SQLitePath() string {
	if p, ok := strings.CutPrefix(c.DatabaseURL, "sqlite://"); ok && p != "" {
		return p
	}
	if p, ok := strings.CutPrefix(c.DatabaseURL, "sqlite:"); ok && p != "" {
		return p
	}
	return filepath.Join(c.DataDir, "brightrun.db")
}

// Getenv reads one environment variable (os.Getenv, or a map in tests).
type Getenv func(string) string

type binding struct {
	flag, env, def, usage string
	set                   func(string) error
}

// Load parses args (without the command name) and the environment. Flags win
// over environment variables, which win over defaults. The returned FlagSet's
// remaining arguments are in rest.
func Load(name string, args []string, getenv Getenv, extra func(*flag.FlagSet)) (Config, []string, error) {
	var c Config
	var secure string
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	boolean := func(p *bool, env string) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a boolean (use true or false)", env, v)
			}
			*p = b
			return nil
		}
	}
	bindings := []binding{
		{"addr", "BRIGHTRUN_ADDR", "127.0.0.1:8080", "listen address", str(&c.Addr)},
		{"public-url", "BRIGHTRUN_PUBLIC_URL", "", "public base URL (default http://ADDR)", str(&c.PublicURL)},
		{"data-dir", "BRIGHTRUN_DATA_DIR", "./data", "data directory (SQLite file, local storage, secrets)", str(&c.DataDir)},
		{"database-url", "BRIGHTRUN_DATABASE_URL", "", "postgres://… for PostgreSQL; empty or sqlite:PATH for SQLite", str(&c.DatabaseURL)},
		{"auth", "BRIGHTRUN_AUTH", "local", "local | supabase", str(&c.Auth)},
		{"allow-signup", "BRIGHTRUN_ALLOW_SIGNUP", "true", "allow sign-up in local auth mode", boolean(&c.AllowSignup, "BRIGHTRUN_ALLOW_SIGNUP")},
		{"secure-cookies", "BRIGHTRUN_SECURE_COOKIES", "", "Secure flag on cookies (default: true when the public URL is https)", str(&secure)},
		{"supabase-url", "BRIGHTRUN_SUPABASE_URL", "", "Supabase project URL (https://PROJECT.supabase.co)", str(&c.SupabaseURL)},
		{"supabase-jwt-secret", "BRIGHTRUN_SUPABASE_JWT_SECRET", "", "Supabase legacy HS256 JWT secret", str(&c.SupabaseJWTSecret)},
		{"supabase-jwks-url", "BRIGHTRUN_SUPABASE_JWKS_URL", "", "JWKS URL for asymmetric Supabase JWT keys", str(&c.SupabaseJWKSURL)},
		{"storage", "BRIGHTRUN_STORAGE", "local", "local | s3", str(&c.Storage)},
		{"s3-endpoint", "BRIGHTRUN_S3_ENDPOINT", "", "S3 endpoint URL", str(&c.S3Endpoint)},
		{"s3-region", "BRIGHTRUN_S3_REGION", "us-east-1", "S3 region", str(&c.S3Region)},
		{"s3-access-key-id", "BRIGHTRUN_S3_ACCESS_KEY_ID", "", "S3 access key id", str(&c.S3AccessKeyID)},
		{"s3-secret-access-key", "BRIGHTRUN_S3_SECRET_ACCESS_KEY", "", "S3 secret access key", str(&c.S3SecretAccessKey)},
		{"s3-path-style", "BRIGHTRUN_S3_PATH_STYLE", "true", "path-style S3 addressing", boolean(&c.S3PathStyle, "BRIGHTRUN_S3_PATH_STYLE")},
		{"s3-bucket-prefix", "BRIGHTRUN_S3_BUCKET_PREFIX", "", "prefix for the real bucket names", str(&c.S3BucketPrefix)},
		{"local-agent", "BRIGHTRUN_LOCAL_AGENT", "true", "start a local trainer agent as a child process", boolean(&c.LocalAgent, "BRIGHTRUN_LOCAL_AGENT")},
		{"trainer", "BRIGHTRUN_TRAINER", ".venv/bin/brightrun-trainer", "path of the brightrun-trainer executable for the local agent", str(&c.Trainer)},
		{"catalog", "BRIGHTRUN_CATALOG", "", "presets, base models and GPUs JSON file (default: built in)", str(&c.Catalog)},
		{"launchers", "BRIGHTRUN_LAUNCHERS", "", "launchers JSON file: start agents on Slurm or Kubernetes for queued jobs (docs/launchers.md)", str(&c.Launchers)},
		{"smtp-addr", "BRIGHTRUN_SMTP_ADDR", "", "SMTP server host:port for email notifications (empty: email off)", str(&c.SMTPAddr)},
		{"smtp-from", "BRIGHTRUN_SMTP_FROM", "", "sender address of notification emails", str(&c.SMTPFrom)},
		{"smtp-username", "BRIGHTRUN_SMTP_USERNAME", "", "SMTP PLAIN auth user (sent only over TLS or to localhost)", str(&c.SMTPUsername)},
		{"smtp-password", "BRIGHTRUN_SMTP_PASSWORD", "", "SMTP PLAIN auth password", str(&c.SMTPPassword)},
		{"webhook-allow-private", "BRIGHTRUN_WEBHOOK_ALLOW_PRIVATE", "false", "let user webhooks reach loopback, private and link-local addresses (single-user setups only)", boolean(&c.WebhookAllowPrivate, "BRIGHTRUN_WEBHOOK_ALLOW_PRIVATE")},
		{"webhook-allow-cidrs", "BRIGHTRUN_WEBHOOK_ALLOW_CIDRS", "", "comma-separated private address ranges user webhooks may reach (e.g. 10.20.0.0/16)", str(&c.WebhookAllowCIDRs)},
		{"trusted-proxies", "BRIGHTRUN_TRUSTED_PROXIES", "", "comma-separated CIDRs of reverse proxies trusted to set X-Forwarded-For / X-Real-IP (e.g. 127.0.0.1/32,10.0.0.0/8; empty: the peer address is the client)", str(&c.TrustedProxies)},
		{"log-level", "BRIGHTRUN_LOG_LEVEL", "info", "debug | info | warn | error", str(&c.LogLevel)},
		{"log-format", "BRIGHTRUN_LOG_FORMAT", "text", "text | json", str(&c.LogFormat)},
		{"shutdown-timeout", "BRIGHTRUN_SHUTDOWN_TIMEOUT", "15s", "graceful shutdown timeout", func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("BRIGHTRUN_SHUTDOWN_TIMEOUT: %q is not a duration (e.g. 15s)", v)
			}
			c.ShutdownTimeout = d
			return nil
		}},
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	values := make(map[string]*string, len(bindings))
	for _, b := range bindings {
		values[b.flag] = fs.String(b.flag, "", fmt.Sprintf("%s (env %s, default %q)", b.usage, b.env, b.def))
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	for _, b := range bindings {
		v := *values[b.flag]
		if v == "" && getenv != nil {
			v = getenv(b.env)
		}
		if v == "" {
			v = b.def
		}
		if err := b.set(v); err != nil {
			return c, nil, err
		}
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if secure == "" {
		c.SecureCookies = strings.HasPrefix(c.PublicURL, "https://")
	} else if b, err := strconv.ParseBool(secure); err == nil {
		c.SecureCookies = b
	} else {
		return c, nil, fmt.Errorf("BRIGHTRUN_SECURE_COOKIES: %q is not a boolean", secure)
	}
	if c.SupabaseJWKSURL == "-" || c.SupabaseJWKSURL == "none" {
		c.SupabaseJWKSURL = "" // HS256 secret only
	} else if c.SupabaseJWKSURL == "" && c.SupabaseURL != "" {
		c.SupabaseJWKSURL = strings.TrimRight(c.SupabaseURL, "/") + "/auth/v1/.well-known/jwks.json"
	}
	return c, fs.Args(), c.Validate()
}

// Validate reports every problem at once, each naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Addr == "" {
		bad("BRIGHTRUN_ADDR must not be empty (e.g. 127.0.0.1:8080)")
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("BRIGHTRUN_PUBLIC_URL: %q must be an absolute http(s) URL such as https://brightrun.example.com", c.PublicURL)
	}
	if c.DataDir == "" {
		bad("BRIGHTRUN_DATA_DIR must not be empty")
	}
	if c.Engine() == "postgres" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("BRIGHTRUN_DATABASE_URL: must be postgres://USER:PASS@HOST:PORT/DB, sqlite:PATH, or empty for SQLite in the data dir")
		}
	}
	switch c.Auth {
	case "local":
	case "supabase":
		if c.SupabaseURL == "" {
			bad("BRIGHTRUN_SUPABASE_URL is required when BRIGHTRUN_AUTH=supabase (it sets the expected token issuer)")
		}
		if c.SupabaseJWTSecret == "" && c.SupabaseJWKSURL == "" {
			bad("BRIGHTRUN_SUPABASE_JWT_SECRET or BRIGHTRUN_SUPABASE_JWKS_URL is required when BRIGHTRUN_AUTH=supabase")
		}
	default:
		bad("BRIGHTRUN_AUTH: %q is not one of local, supabase", c.Auth)
	}
	switch c.Storage {
	case "local":
	case "s3":
		if c.S3Endpoint == "" {
			bad("BRIGHTRUN_S3_ENDPOINT is required when BRIGHTRUN_STORAGE=s3")
		}
		if c.S3AccessKeyID == "" || c.S3SecretAccessKey == "" {
			bad("BRIGHTRUN_S3_ACCESS_KEY_ID and BRIGHTRUN_S3_SECRET_ACCESS_KEY are required when BRIGHTRUN_STORAGE=s3")
		}
	default:
		bad("BRIGHTRUN_STORAGE: %q is not one of local, s3", c.Storage)
	}
	if c.SMTPAddr != "" {
		if _, port, err := net.SplitHostPort(c.SMTPAddr); err != nil || port == "" {
			bad("BRIGHTRUN_SMTP_ADDR: %q must be host:port (e.g. smtp.example.com:587)", c.SMTPAddr)
		}
		if _, err := mail.ParseAddress(c.SMTPFrom); err != nil {
			bad("BRIGHTRUN_SMTP_FROM is required when BRIGHTRUN_SMTP_ADDR is set and must be an email address (e.g. brightrun@example.com)")
		}
	}
	if _, err := c.WebhookCIDRs(); err != nil {
		bad("BRIGHTRUN_WEBHOOK_ALLOW_CIDRS: %v (use comma-separated CIDRs such as 10.20.0.0/16,fd00:1::/64)", err)
	}
	if _, err := c.TrustedProxyCIDRs(); err != nil {
		bad("BRIGHTRUN_TRUSTED_PROXIES: %v (use comma-separated CIDRs such as 127.0.0.1/32,10.0.0.0/8)", err)
	}
	if (c.SMTPUsername == "") != (c.SMTPPassword == "") {
		bad("BRIGHTRUN_SMTP_USERNAME and BRIGHTRUN_SMTP_PASSWORD are set together or not at all")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("BRIGHTRUN_LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("BRIGHTRUN_LOG_FORMAT: %q is not one of text, json", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 {
		bad("BRIGHTRUN_SHUTDOWN_TIMEOUT must be positive")
	}
	return errors.Join(errs...)
}

// WebhookCIDRs parses BRIGHTRUN_WEBHOOK_ALLOW_CIDRS.
func (c Config) WebhookCIDRs() ([]netip.Prefix, error) {
	return parseCIDRs(c.WebhookAllowCIDRs)
}

// TrustedProxyCIDRs parses BRIGHTRUN_TRUSTED_PROXIES.
func (c Config) TrustedProxyCIDRs() ([]netip.Prefix, error) {
	return parseCIDRs(c.TrustedProxies)
}

func parseCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
