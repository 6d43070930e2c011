package stratum

import "net/netip"

// remoteIP returns the IP part of a "host:port" or bare IP address (an
// IPv4-mapped IPv6 address as IPv4), or "" when addr is neither: the key
// under which admission counts a connection and the address a share
// records.
func remoteIP(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().String()
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		return a.Unmap().String()
	}
	return ""
}
