package viewer

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// maxForwardedHops bounds the X-Forwarded-For entries looked at: a chain
// of proxies is a few hops, never many.
const maxForwardedHops = 8

// parseTrustedProxies turns http.trusted_proxies (addresses or CIDR
// prefixes) into prefixes.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("http.trusted_proxies[%d]: %q is not an IP address or CIDR prefix", i, s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// trusted says whether ip is one of the trusted proxies.
func trusted(proxies []netip.Prefix, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedTLSKey marks, in a request's context, a request that a trusted
// proxy received over TLS (X-Forwarded-Proto: https).
type forwardedTLSKey struct{}

// secure says whether the client reached us over TLS: directly, or
// through a trusted proxy that terminated it. Cookies are then Secure and
// HSTS is sent.
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Context().Value(forwardedTLSKey{}) != nil
}

// trustedForwarded takes the client's address from X-Forwarded-For when
// the request comes from a trusted proxy (http.trusted_proxies: the load
// balancer in front of the nodes): the login limits, the video caps and
// the audit log then see the operator's address, not the balancer's. The
// client is the right-most address that is not itself a trusted proxy;
// what a client wrote in the header left of that is not believed. The
// proxy's X-Forwarded-Proto: https says it terminated TLS.
func (s *Server) trustedForwarded(next http.Handler) http.Handler {
	if len(s.trustedProxies) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !trusted(s.trustedProxies, clientAddr(r)) {
			next.ServeHTTP(w, r)
			return
		}
		if strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https") {
			r = r.WithContext(context.WithValue(r.Context(), forwardedTLSKey{}, true))
		}
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		client := ""
		for i := len(hops) - 1; i >= 0 && len(hops)-i <= maxForwardedHops; i-- {
			ip := strings.TrimSpace(hops[i])
			if _, err := netip.ParseAddr(ip); err != nil {
				break
			}
			client = ip
			if !trusted(s.trustedProxies, ip) {
				break
			}
		}
		if client == "" {
			next.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.RemoteAddr = net.JoinHostPort(client, strconv.Itoa(0))
		next.ServeHTTP(w, r2)
	})
}
