package outbound

import (
	"net/netip"
	"testing"
)

func TestPrivateClassifier(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::ffff:127.0.0.1": true, "169.254.169.254": true, "100.64.0.1": true,
		"fd00::1": true, "0.0.0.0": true, "::": true, "::1": true, "10.1.2.3": true, "172.16.0.1": true,
		"192.168.1.1": true, "fe80::1": true, "224.0.0.1": true, "ff02::1": true,
		"8.8.8.8": false, "2001:4860:4860::8888": false, "1.1.1.1": false, "::ffff:8.8.8.8": false,
	} {
		if got := Private(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Private(%s) = %v, want %v", addr, got, want)
		}
	}
	p := Policy{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if !p.Allowed(netip.MustParseAddr("10.2.3.4")) || p.Allowed(netip.MustParseAddr("127.0.0.1")) {
		t.Error("AllowCIDRs not applied")
	}
	if !(Policy{AllowPrivate: true}).Allowed(netip.MustParseAddr("127.0.0.1")) {
		t.Error("AllowPrivate not applied")
	}
}
