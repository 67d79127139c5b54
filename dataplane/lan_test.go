package dataplane

import (
	"strings"
	"testing"
)

// TestLANNetworkRules: a macvlan/ipvlan network's subnets are no pod
// subnets (a bridge network's traffic to the LAN stays masqueraded), and
// every published connection into its host-access shim is masqueraded
// (the container's reply would otherwise go out to the LAN directly).
func TestLANNetworkRules(t *testing.T) {
	web := testNetwork("0123456789abcdef", "pn-web", "10.1.0.0/24")
	lan := testNetwork("fedcba9876543210", "pn-lan", "192.168.1.0/24")
	lan.LAN, lan.Masquerade = true, false
	rs := buildRuleset(rulesetInput{table: "podnet", bridgePrefix: "pn-",
		nets: map[string]Network{web.ID: web, lan.ID: lan}, eps: map[string]endpointState{}})
	text := rs.String()
	if strings.Contains(text, "192.168.1.0/24") {
		t.Fatalf("a LAN subnet must not be in the pod subnet sets or get bridge rules:\n%s", text)
	}
	for _, want := range []string{
		`ct status dnat oifname "pn-lan" masquerade comment "lan net fedcba987654"`,
		`ip saddr 10.1.0.0/24 ip daddr != @subnets4 oifname != "pn-web" masquerade`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("missing %q in:\n%s", want, text)
		}
	}
}
