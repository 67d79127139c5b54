package dataplane

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

// withoutPolicy is rs without the network policy section, for the tests
// of the other sections' text (testdata/policy.nft holds this one's).
func withoutPolicy(rs *ruleset) *ruleset {
	out := &ruleset{table: rs.table}
	for _, s := range rs.sets {
		if !isPolicyObject(s.name) {
			out.sets = append(out.sets, s)
		}
	}
	for _, c := range rs.chains {
		if !isPolicyObject(c.name) {
			out.chains = append(out.chains, c)
		}
	}
	for _, r := range rs.rules {
		if !isPolicyObject(r.chain) {
			out.rules = append(out.rules, r)
		}
	}
	return out
}

// onlyPolicy is the policy section of rs.
func onlyPolicy(rs *ruleset) *ruleset {
	out := &ruleset{table: rs.table, counters: rs.counters}
	for _, s := range rs.sets {
		if isPolicyObject(s.name) {
			out.sets = append(out.sets, s)
		}
	}
	for _, c := range rs.chains {
		if isPolicyObject(c.name) {
			out.chains = append(out.chains, c)
		}
	}
	for _, r := range rs.rules {
		if isPolicyObject(r.chain) {
			out.rules = append(out.rules, r)
		}
	}
	return out
}

var (
	pc1 = container{ip4: netip.MustParseAddr("10.200.1.2"), ip6: netip.MustParseAddr("fd00:1::2")}
	pc2 = container{ip4: netip.MustParseAddr("10.200.1.3"), ip6: netip.MustParseAddr("fd00:1::3")}
	pc3 = container{ip4: netip.MustParseAddr("10.200.1.4"), ip6: netip.MustParseAddr("fd00:1::4")}
)

// TestPolicySectionText compares the section of policyFixture with
// testdata/policy.nft, reviewed by hand; the kernel test checks that nft
// prints and compiles the same text.
func TestPolicySectionText(t *testing.T) {
	e := newFakeEngine(t)
	if err := e.SetPolicy(context.Background(), policyFixture(pc1, pc2, pc3)); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/policy.nft")
	if err != nil {
		t.Fatal(err)
	}
	if got := onlyPolicy(e.nft.lastRuleset).String(); got != string(want) {
		t.Fatalf("policy section:\n%s\nwant (testdata/policy.nft):\n%s", got, want)
	}
}

// TestPolicyDeltaIsSmall: a new endpoint, a new policy's counters and a
// peer joining a set are one batch of elements and counters; nothing is
// rewritten, no chain is touched.
func TestPolicyDeltaIsSmall(t *testing.T) {
	e := newFakeEngine(t)
	ctx := context.Background()
	p := policyFixture(pc1, pc2, pc3)
	if err := e.SetPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	tables := e.nft.tables
	p.Endpoints = append(p.Endpoints, PolicyEndpoint{Addrs: []netip.Addr{netip.MustParseAddr("10.200.1.9")}, Ingress: "i-db"})
	p.AddrSets["web"] = append(p.AddrSets["web"], netip.MustParseAddr("10.200.7.7"))
	p.Policies = append(p.Policies, "new")
	if err := e.SetPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if e.nft.tables != tables || len(e.nft.deltas) != 1 {
		t.Fatalf("syncs %d (was %d), deltas %d: want one delta and no rewrite", e.nft.tables, tables, len(e.nft.deltas))
	}
	d := e.nft.deltas[0]
	var added []string
	for _, el := range d.addElems {
		added = append(added, el.set+": "+el.text)
	}
	slices.Sort(added)
	want := []string{"np-a4-web: 10.200.7.7", "np-in4: 10.200.1.9 : goto np-i4-i-db", "np-self4: 10.200.1.9 . 10.200.1.9"}
	if !slices.Equal(added, want) || len(d.delElems) != 0 || len(d.addCounters) != 2 ||
		len(d.addChains)+len(d.flushChains)+len(d.delChains)+len(d.addSets)+len(d.delSets) != 0 {
		t.Fatalf("delta: add %v del %d counters +%v chains +%v ~%v -%v sets +%d -%d; want elements %v and 2 counters",
			added, len(d.delElems), d.addCounters, d.addChains, d.flushChains, d.delChains, len(d.addSets), len(d.delSets), want)
	}
}

func TestValidatePolicyRefuses(t *testing.T) {
	p := policyFixture(pc1, pc2, pc3)
	p.Groups[0].Rules[0].Peers = []string{"missing"}
	if err := validatePolicy(&p); err == nil || !strings.Contains(err.Error(), "peer set missing") {
		t.Fatalf("err = %v", err)
	}
	p = policyFixture(pc1, pc2, pc3)
	p.Endpoints[0].Egress = "nope"
	if err := validatePolicy(&p); err == nil || !strings.Contains(err.Error(), "group nope") {
		t.Fatalf("err = %v", err)
	}
}
