package outbound

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
)

// TestClientRefusesPrivateAtConnectTime drives the webhook client against a
// real loopback receiver: refused by default (the receiver is never hit, so a
// name that resolves to loopback, e.g. after DNS rebinding, gets nowhere),
// allowed by the operator's settings, and a redirect to another host is not
// followed.
func TestClientRefusesPrivateAtConnectTime(t *testing.T) {
	var hits atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer recv.Close()

	_, err := NewHTTPClient(Policy{}).Post(recv.URL, "application/json", nil)
	if !errors.Is(err, ErrDestinationNotAllowed) || hits.Load() != 0 {
		t.Fatalf("default policy: err %v, hits %d", err, hits.Load())
	}
	if got := reason(err); got != ErrDestinationNotAllowed.Error() {
		t.Fatalf("reason %q", got)
	}
	for _, p := range []Policy{{AllowPrivate: true}, {AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}} {
		res, err := NewHTTPClient(p).Post(recv.URL, "application/json", nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("allowed policy %+v: %v", p, err)
		}
		res.Body.Close()
	}
	if hits.Load() != 2 {
		t.Fatalf("hits %d", hits.Load())
	}

	// A receiver that redirects to another host (here 127.0.0.2, also
	// loopback but not allowed): the redirect is not followed.
	var inner atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner.Add(1) }))
	defer target.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost"+target.URL[len("http://127.0.0.1"):], http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	_, err = NewHTTPClient(Policy{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}).Post(redir.URL, "application/json", nil)
	if err == nil || inner.Load() != 0 {
		t.Fatalf("redirect followed: err %v, target hits %d", err, inner.Load())
	}
}

func TestValidWebhookURLRefusesLiteralPrivate(t *testing.T) {
	var p Policy
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://localhost/x", "http://api.localhost/", "http://[::1]/", "http://169.254.169.254/", "http://10.1.2.3/", "ftp://example.com/"} {
		if p.ValidWebhookURL(u) == "" {
			t.Errorf("%s accepted", u)
		}
	}
	for _, u := range []string{"https://hooks.example.com/brightrun", "http://8.8.8.8/hook"} {
		if msg := p.ValidWebhookURL(u); msg != "" {
			t.Errorf("%s refused: %s", u, msg)
		}
	}
	if msg := (Policy{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}).ValidWebhookURL("http://10.1.2.3/"); msg != "" {
		t.Errorf("allowed range refused: %s", msg)
	}
}
