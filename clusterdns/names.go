package clusterdns

import (
	"net/netip"
	"strings"

	"github.com/podnet/podnet/store"
)

// normalizeName is the index form of a DNS name: ASCII lower case (DNS
// compares names case-insensitively, ASCII only) without the trailing dot.
// It reports false for the root and the empty name.
func normalizeName(name string) (string, bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || strings.HasSuffix(name, ".") {
		return "", false
	}
	return store.ASCIILower(name), true
}

// containerLabel is the index form of a container name or network alias
// the cluster DNS answers: a single label. A dotted one (a container
// named github.com, --network-alias www.example.org) is never answered,
// since it would shadow that name of the outside world for every
// container that uses the cluster DNS; queries for it go upstream like
// any name podnet does not know. Service names, answered first, are DNS
// labels and NAME.svc.DOMAIN.
func containerLabel(name string) (string, bool) {
	return store.DNSLabel(name)
}

const (
	reverse4 = ".in-addr.arpa"
	reverse6 = ".ip6.arpa"
)

// parseReverse reads the address of a full reverse name
// (4.3.2.1.in-addr.arpa., or 32 nibbles under ip6.arpa.). Partial names
// (a whole /24 or /64 zone) report false.
func parseReverse(name string) (netip.Addr, bool) {
	name, ok := normalizeName(name)
	if !ok {
		return netip.Addr{}, false
	}
	if rest, ok := strings.CutSuffix(name, reverse4); ok {
		return parseReverse4(rest)
	}
	if rest, ok := strings.CutSuffix(name, reverse6); ok {
		return parseReverse6(rest)
	}
	return netip.Addr{}, false
}

func parseReverse4(rest string) (netip.Addr, bool) {
	labels := strings.Split(rest, ".")
	if len(labels) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, l := range labels {
		if len(l) == 0 || len(l) > 3 || (len(l) > 1 && l[0] == '0') {
			return netip.Addr{}, false
		}
		n := 0
		for _, c := range []byte(l) {
			if c < '0' || c > '9' {
				return netip.Addr{}, false
			}
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return netip.Addr{}, false
		}
		b[3-i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

func parseReverse6(rest string) (netip.Addr, bool) {
	// 32 nibbles, each one character, separated by dots.
	if len(rest) != 63 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i := 0; i < 32; i++ {
		c := rest[2*i]
		if i < 31 && rest[2*i+1] != '.' {
			return netip.Addr{}, false
		}
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			return netip.Addr{}, false
		}
		// The first nibble of the name is the lowest of the address.
		pos := 31 - i
		if pos%2 == 0 {
			b[pos/2] |= v << 4
		} else {
			b[pos/2] |= v
		}
	}
	return netip.AddrFrom16(b), true
}
