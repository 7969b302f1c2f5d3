package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the address login throttling and sessions attribute a request
// to. It is the TCP peer unless the peer is one of the operator's trusted
// reverse proxies (BRIGHTRUN_TRUSTED_PROXIES): then X-Forwarded-For is read
// right to left, skipping trusted proxies, and the first address that is not
// one is the client (X-Real-IP when there is no X-Forwarded-For). Forwarded
// headers from anyone else are ignored, so they cannot be spoofed to dodge
// or to aim the per-IP throttle.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseIP(r.RemoteAddr)
	if !ok {
		return hostOnly(r.RemoteAddr)
	}
	if !inAny(peer, trusted) {
		return peer.String()
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		client := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseIP(strings.TrimSpace(hops[i]))
			if !ok {
				break // garbage a trusted proxy passed on: stop at the last good hop
			}
			client = a
			if !inAny(a, trusted) {
				break
			}
		}
		return client.String()
	}
	if a, ok := parseIP(strings.TrimSpace(r.Header.Get("X-Real-IP"))); ok {
		return a.String()
	}
	return peer.String()
}

// parseIP reads an address with or without a port ("1.2.3.4", "1.2.3.4:80",
// "[::1]:80", "::1"), IPv4-mapped IPv6 unmapped.
func parseIP(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
