package clusterdns

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParseReverse(t *testing.T) {
	for name, want := range map[string]string{
		"1.0.0.10.in-addr.arpa.":        "10.0.0.1",
		"1.0.0.10.IN-ADDR.ARPA":         "10.0.0.1",
		"255.255.255.255.in-addr.arpa.": "255.255.255.255",
		"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.": "fd00::2",
		"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.D.F.IP6.ARPA":  "fd00::2",
	} {
		got, ok := parseReverse(name)
		if !ok || got != netip.MustParseAddr(want) {
			t.Errorf("parseReverse(%q) = %v, %v; want %s", name, got, ok, want)
		}
	}
	for _, name := range []string{
		"", ".", "web.", "0.0.10.in-addr.arpa.", "1.0.0.0.10.in-addr.arpa.", "256.0.0.10.in-addr.arpa.",
		"01.0.0.10.in-addr.arpa.", "a.0.0.10.in-addr.arpa.", "1..0.10.in-addr.arpa.", "in-addr.arpa.",
		"0.d.f.ip6.arpa.", "g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
		"20.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
	} {
		if a, ok := parseReverse(name); ok {
			t.Errorf("parseReverse(%q) = %v, want not a full reverse name", name, a)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{"Web": "web", "WEB.": "web", "web.ns.": "web.ns", "ÄB.": "Äb"} {
		if got, ok := normalizeName(in); !ok || got != want {
			t.Errorf("normalizeName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", ".", ".."} {
		if got, ok := normalizeName(in); ok {
			t.Errorf("normalizeName(%q) = %q, want rejected", in, got)
		}
	}
}

// FuzzParseReverse checks that whatever parseReverse accepts is exactly the
// canonical reverse name of the address it returns (up to case and the
// trailing dot), and that it never panics.
func FuzzParseReverse(f *testing.F) {
	for _, s := range []string{"1.0.0.10.in-addr.arpa.", "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
		"web.", "", "in-addr.arpa", "999.1.1.1.in-addr.arpa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		a, ok := parseReverse(name)
		if !ok {
			return
		}
		rev, err := dns.ReverseAddr(a.String())
		if err != nil {
			t.Fatalf("ReverseAddr(%s): %v", a, err)
		}
		if !strings.EqualFold(strings.TrimSuffix(name, "."), strings.TrimSuffix(rev, ".")) {
			t.Fatalf("parseReverse(%q) = %s, whose reverse name is %q", name, a, rev)
		}
		if b, ok := parseReverse(rev); !ok || b != a {
			t.Fatalf("round trip of %s through %q = %v, %v", a, rev, b, ok)
		}
	})
}

// FuzzNormalizeName checks that normalization is idempotent, case-blind
// for ASCII and never leaves a trailing dot.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"web", "WEB.", "a.b.c.", "", ".", "Ä.", "x..", "\\046."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, ok := normalizeName(name)
		if !ok {
			return
		}
		if n == "" || strings.HasSuffix(n, ".") {
			t.Fatalf("normalizeName(%q) = %q", name, n)
		}
		if n2, ok := normalizeName(n); !ok || n2 != n {
			t.Fatalf("not idempotent: %q → %q → %q", name, n, n2)
		}
		if u, ok := normalizeName(strings.ToUpper(name)); ok && strings.ToLower(name) == name && u != n && isASCII(name) {
			t.Fatalf("case matters: %q → %q, upper → %q", name, n, u)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
