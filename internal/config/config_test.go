package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, _, err := Load("t", nil, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine() != "sqlite" || c.SQLitePath() != "data/brightrun.db" || c.Auth != "local" || c.Storage != "local" || c.PublicURL != "http://127.0.0.1:8080" || c.SecureCookies {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFlagsWinOverEnv(t *testing.T) {
	c, rest, err := Load("t", []string{"--data-dir", "/x", "extra"}, env(map[string]string{"BRIGHTRUN_DATA_DIR": "/y", "BRIGHTRUN_DATABASE_URL": "postgres://u@h/db"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/x" || c.Engine() != "postgres" || len(rest) != 1 {
		t.Fatalf("%+v %v", c, rest)
	}
	c, _, _ = Load("t", nil, env(map[string]string{"BRIGHTRUN_PUBLIC_URL": "https://br.example.com/"}), nil)
	if !c.SecureCookies || c.PublicURL != "https://br.example.com" {
		t.Fatalf("https public URL must imply secure cookies: %+v", c)
	}
}

// Every invalid setting is reported at once, naming its variable.
func TestValidationNamesVariables(t *testing.T) {
	_, _, err := Load("t", nil, env(map[string]string{
		"BRIGHTRUN_AUTH": "ldap", "BRIGHTRUN_STORAGE": "s3", "BRIGHTRUN_LOG_LEVEL": "loud",
		"BRIGHTRUN_DATABASE_URL": "mysql://x", "BRIGHTRUN_PUBLIC_URL": "ftp://x",
	}), nil)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, v := range []string{"BRIGHTRUN_AUTH", "BRIGHTRUN_S3_ENDPOINT", "BRIGHTRUN_S3_ACCESS_KEY_ID", "BRIGHTRUN_LOG_LEVEL", "BRIGHTRUN_DATABASE_URL", "BRIGHTRUN_PUBLIC_URL"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
	_, _, err = Load("t", nil, env(map[string]string{"BRIGHTRUN_AUTH": "supabase"}), nil)
	if err == nil || !strings.Contains(err.Error(), "BRIGHTRUN_SUPABASE_URL") {
		t.Fatalf("supabase without URL: %v", err)
	}
	_, _, err = Load("t", nil, env(map[string]string{"BRIGHTRUN_ALLOW_SIGNUP": "maybe"}), nil)
	if err == nil || !strings.Contains(err.Error(), "BRIGHTRUN_ALLOW_SIGNUP") {
		t.Fatalf("bad boolean: %v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, _, err := Load("t", nil, env(map[string]string{"BRIGHTRUN_TRUSTED_PROXIES": " 127.0.0.1/32, 10.1.2.3/8 ,fd00::/8"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := c.TrustedProxyCIDRs()
	if len(got) != 3 || got[1].String() != "10.0.0.0/8" {
		t.Fatalf("trusted proxies: %v", got)
	}
	_, _, err = Load("t", nil, env(map[string]string{"BRIGHTRUN_TRUSTED_PROXIES": "127.0.0.1/32,proxy.internal"}), nil)
	if err == nil || !strings.Contains(err.Error(), `BRIGHTRUN_TRUSTED_PROXIES: "proxy.internal" is not a CIDR`) {
		t.Fatalf("bad CIDR: %v", err)
	}
}
