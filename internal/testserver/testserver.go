// Package testserver starts a real BrightRun (app.New + an HTTP listener on
// loopback) for end-to-end and browser tests, on SQLite or PostgreSQL, and
// gives tests HTTP clients that sign up, keep cookies and send CSRF tokens.
package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/config"
	"github.com/brightrun/brightrun/internal/store/testdb"
)

// Server is a running BrightRun.
type Server struct {
	URL string
	App *app.App
}

// Options tweak the server's configuration.
type Options struct {
	Env map[string]string // extra BRIGHTRUN_* settings
	App app.Options
}

// Start runs a server on engine e until the test ends.
func Start(t testing.TB, e testdb.Engine, o Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	env := map[string]string{
		"BRIGHTRUN_DATA_DIR": t.TempDir(), "BRIGHTRUN_PUBLIC_URL": url, "BRIGHTRUN_ADDR": ln.Addr().String(),
		"BRIGHTRUN_DATABASE_URL": e.URL(t), "BRIGHTRUN_LOG_LEVEL": "warn", "BRIGHTRUN_LOCAL_AGENT": "false",
	}
	for k, v := range o.Env {
		env[k] = v
	}
	c, _, err := config.Load("test", nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("BRIGHTRUN_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.NewWith(ctx, c, log, o.App)
	if err != nil {
		cancel()
		t.Fatalf("app: %v", err)
	}
	wg := a.RunWorkers(ctx)
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		cancel()
		sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer c2()
		_ = srv.Shutdown(sctx)
		wg.Wait()
		_ = a.Close()
	})
	return &Server{URL: url, App: a}
}

// Client is an HTTP client with a cookie jar and, once signed in, a CSRF
// token or a bearer token.
type Client struct {
	T      testing.TB
	Base   string
	HTTP   *http.Client
	CSRF   string
	Bearer string
	UserID string
	Email  string
}

// NewClient returns an anonymous client.
func (s *Server) NewClient(t testing.TB) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{T: t, Base: s.URL, HTTP: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// SignUp creates an account through the API and returns its signed-in client.
func (s *Server) SignUp(t testing.TB, email string) *Client {
	c := s.NewClient(t)
	var out struct {
		User struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"user"`
		CSRFToken string `json:"csrf_token"`
	}
	c.MustJSON("POST", "/api/auth/signup", map[string]string{"email": email, "password": "correct horse battery"}, 201, &out)
	c.CSRF, c.UserID, c.Email = out.CSRFToken, out.User.ID, out.User.Email
	return c
}

// Login starts a new session for an existing account.
func (s *Server) Login(t testing.TB, email string) *Client {
	c := s.NewClient(t)
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		CSRFToken string `json:"csrf_token"`
	}
	c.MustJSON("POST", "/api/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, 200, &out)
	c.CSRF, c.UserID, c.Email = out.CSRFToken, out.User.ID, email
	return c
}

// Response is a decoded API response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request with a JSON body (nil for none).
func (c *Client) Do(method, path string, body any) Response {
	c.T.Helper()
	var r io.Reader
	if body != nil {
		if b, ok := body.([]byte); ok {
			r = bytes.NewReader(b)
		} else {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, c.Base+path, r)
	if err != nil {
		c.T.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.CSRF != "" {
		req.Header.Set("X-CSRF-Token", c.CSRF)
	}
	if c.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.Bearer)
	}
	return c.Send(req)
}

// Send sends a prepared request.
func (c *Client) Send(req *http.Request) Response {
	c.T.Helper()
	res, err := c.HTTP.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// MustJSON sends a request, checks the status and decodes data into out.
func (c *Client) MustJSON(method, path string, body any, status int, out any) Response {
	c.T.Helper()
	r := c.Do(method, path, body)
	if r.Status != status {
		c.T.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	if out != nil {
		var env struct {
			Success bool            `json:"success"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &env); err != nil || !env.Success {
			c.T.Fatalf("%s %s: not a success envelope: %s", method, path, r.Body)
		}
		if err := json.Unmarshal(env.Data, out); err != nil {
			c.T.Fatalf("%s %s: decode data: %v", method, path, err)
		}
	}
	return r
}

// ErrorBody decodes an error envelope.
func (r Response) ErrorBody() (msg string, details map[string]any) {
	var e struct {
		Error   string         `json:"error"`
		Details map[string]any `json:"details"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error, e.Details
}
