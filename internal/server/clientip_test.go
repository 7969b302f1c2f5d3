package server

import (
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"

	"github.com/brightrun/brightrun/internal/config"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, c := range []struct {
		name, peer, xff, realIP string
		trusted                 []netip.Prefix
		want                    string
	}{
		{"no setting: XFF ignored", "192.0.2.7:5000", "203.0.113.1", "", nil, "192.0.2.7"},
		{"no setting: X-Real-IP ignored", "192.0.2.7:5000", "", "203.0.113.1", nil, "192.0.2.7"},
		{"untrusted peer spoofing XFF", "192.0.2.7:5000", "203.0.113.1", "", trusted, "192.0.2.7"},
		{"untrusted peer spoofing X-Real-IP", "192.0.2.7:5000", "", "203.0.113.1", trusted, "192.0.2.7"},
		{"trusted proxy", "10.0.0.2:5000", "203.0.113.1", "", trusted, "203.0.113.1"},
		{"right to left past trusted hops", "10.0.0.2:5000", "198.51.100.9, 203.0.113.1, 10.1.1.1", "", trusted, "203.0.113.1"},
		{"client-written hops are not believed", "10.0.0.2:5000", "1.1.1.1, 203.0.113.1", "", trusted, "203.0.113.1"},
		{"all hops trusted: the leftmost", "10.0.0.2:5000", "10.3.3.3, 10.1.1.1", "", trusted, "10.3.3.3"},
		{"garbage stops the walk", "10.0.0.2:5000", "203.0.113.1, nonsense", "", trusted, "10.0.0.2"},
		{"X-Real-IP from a trusted proxy", "10.0.0.2:5000", "", "203.0.113.5", trusted, "203.0.113.5"},
		{"IPv6 peer and hop with port", "[fd00::1]:443", "[2001:db8::5]:1234", "", trusted, "2001:db8::5"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.2]:80", "203.0.113.1", "", trusted, "203.0.113.1"},
	} {
		r := httptest.NewRequest("POST", "/api/auth/login", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if c.realIP != "" {
			r.Header.Set("X-Real-IP", c.realIP)
		}
		if got := clientIP(r, c.trusted); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestConnectSources(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  config.Config
		want []string
	}{
		{"local storage", config.Config{PublicURL: "https://br.example.com", Storage: "local"}, []string{"https://br.example.com"}},
		{"s3 path style", config.Config{PublicURL: "https://br.example.com", Storage: "s3", S3Endpoint: "https://proj.supabase.co/storage/v1/s3", S3PathStyle: true},
			[]string{"https://br.example.com", "https://proj.supabase.co"}},
		{"s3 virtual hosted", config.Config{PublicURL: "https://br.example.com", Storage: "s3", S3Endpoint: "https://s3.eu-west-1.amazonaws.com", S3BucketPrefix: "acme-"},
			[]string{"https://br.example.com", "https://acme-lora-datasets.s3.eu-west-1.amazonaws.com"}},
		{"s3 on the public origin", config.Config{PublicURL: "http://localhost:9000", Storage: "s3", S3Endpoint: "http://localhost:9000", S3PathStyle: true},
			[]string{"http://localhost:9000"}},
	} {
		if got := connectSources(c.cfg); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
