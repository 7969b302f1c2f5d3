package outbound

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Policy says which webhook destinations may be dialled. The zero value
// refuses every non-public address.
type Policy struct {
	AllowPrivate bool           // BRIGHTRUN_WEBHOOK_ALLOW_PRIVATE
	AllowCIDRs   []netip.Prefix // BRIGHTRUN_WEBHOOK_ALLOW_CIDRS
}

// ErrDestinationNotAllowed is returned by the dialer for a refused address.
var ErrDestinationNotAllowed = errors.New("destination not allowed: private address")

var special = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
		"2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "ff00::/8",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// Private reports whether addr is loopback, private, link-local, CGNAT,
// multicast, unspecified or another special-purpose address. IPv4-mapped
// IPv6 addresses are unwrapped first.
func Private(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return true
	}
	for _, p := range special {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Allowed reports whether the policy lets a webhook reach addr.
func (p Policy) Allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !Private(addr) || p.AllowPrivate {
		return true
	}
	for _, c := range p.AllowCIDRs {
		if c.Contains(addr) {
			return true
		}
	}
	return false
}

// control runs at connect time, after DNS resolution, for every
// connection (redirect hops included), so rebinding cannot bypass it.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !p.Allowed(ap.Addr()) {
		return ErrDestinationNotAllowed
	}
	return nil
}

// Dialer is a net.Dialer that refuses addresses the policy does not allow.
func (p Policy) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: Timeout, KeepAlive: 30 * time.Second, Control: p.control}
}

// reason turns a delivery error into the short text stored in the log:
// valid UTF-8, at most 200 runes.
func reason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, ErrDestinationNotAllowed):
		return ErrDestinationNotAllowed.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return cutRunes(strings.ToValidUTF8(err.Error(), "\uFFFD"), 200)
}

func cutRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}
