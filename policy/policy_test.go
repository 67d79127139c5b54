package policy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podnet/podnet/store"
)

func sel(ml map[string]string, rs ...store.LabelRequirement) store.LabelSelector {
	return store.LabelSelector{MatchLabels: ml, MatchExpressions: rs}
}

func TestMatches(t *testing.T) {
	l := map[string]string{"app": "web", "tier": "a", "com.docker.compose.project": "shop"}
	cases := []struct {
		s    store.LabelSelector
		want bool
	}{
		{sel(nil), true},
		{sel(map[string]string{"app": "web"}), true},
		{sel(map[string]string{"app": "db"}), false},
		{sel(nil, store.LabelRequirement{Key: "tier", Operator: store.OpIn, Values: []string{"a", "b"}}), true},
		{sel(nil, store.LabelRequirement{Key: "tier", Operator: store.OpNotIn, Values: []string{"a"}}), false},
		{sel(nil, store.LabelRequirement{Key: "nope", Operator: store.OpNotIn, Values: []string{"a"}}), true},
		{sel(nil, store.LabelRequirement{Key: "app", Operator: store.OpExists}), true},
		{sel(nil, store.LabelRequirement{Key: "app", Operator: store.OpDoesNotExist}), false},
		{sel(map[string]string{"app": "web"}, store.LabelRequirement{Key: "legacy", Operator: store.OpDoesNotExist}), true},
	}
	for i, c := range cases {
		if got := Matches(c.s, l); got != c.want {
			t.Errorf("case %d %s: got %v, want %v", i, Describe(c.s), got, c.want)
		}
		// The anchor never hides a match: a matching label set carries it.
		if a := AnchorOf(c.s); c.want && !a.Universal {
			ok := a.Key != "" && l[a.Key] != ""
			for _, term := range a.Terms {
				k, v, _ := strings.Cut(term, "=")
				ok = ok || l[k] == v
			}
			if !ok {
				t.Errorf("case %d: anchor %+v misses labels that match", i, a)
			}
		}
	}
}

func TestKey(t *testing.T) {
	a := sel(map[string]string{"b": "2", "a": "1"}, store.LabelRequirement{Key: "t", Operator: store.OpIn, Values: []string{"y", "x"}},
		store.LabelRequirement{Key: "old", Operator: store.OpDoesNotExist})
	if got, want := Key(a), "a=1,b=2,!old,t in (x,y)"; got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
	if Key(sel(nil)) != "" || Describe(sel(nil)) != "{} (every container)" {
		t.Fatalf("empty selector: key %q, describe %q", Key(sel(nil)), Describe(sel(nil)))
	}
}

func TestBlockRanges(t *testing.T) {
	b := store.IPBlock{CIDR: netip.MustParsePrefix("10.0.0.0/8"),
		Except: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("10.2.1.0/24")}}
	got := rangesText(blockRanges(b))
	if want := "10.1.0.0-10.1.255.255,10.3.0.0-10.255.255.255,"; got != want {
		t.Fatalf("ranges = %s, want %s", got, want)
	}
	rs := blockRanges(b)
	for a, want := range map[string]bool{"10.0.5.5": false, "10.1.0.0": true, "10.2.1.1": false, "10.255.255.255": true, "11.0.0.0": false, "fd00::1": false} {
		if contains(rs, netip.MustParseAddr(a)) != want {
			t.Errorf("contains %s = %v, want %v", a, !want, want)
		}
	}
}

// fixture: two Compose projects, a policy set like the e2e suite's.
func fixture() Input {
	addr := netip.MustParseAddr
	targets := []Target{
		{ID: "e1", Name: "shop-web-1", Known: true, Labels: map[string]string{"com.docker.compose.project": "shop", "app": "web"}, Addrs: []netip.Addr{addr("10.0.0.1")}},
		{ID: "e2", Name: "shop-db-1", Known: true, Labels: map[string]string{"com.docker.compose.project": "shop", "app": "db"}, Addrs: []netip.Addr{addr("10.0.0.2")}},
		{ID: "e3", Name: "blog-web-1", Known: true, Labels: map[string]string{"com.docker.compose.project": "blog", "app": "web"}, Addrs: []netip.Addr{addr("10.0.0.3")}},
		{ID: "e4", Name: "new", Addrs: []netip.Addr{addr("10.0.0.4")}},
	}
	selected := func(key string) []netip.Addr {
		var out []netip.Addr
		for _, tg := range targets {
			if !tg.Known {
				continue
			}
			for _, p := range []store.LabelSelector{sel(nil), sel(map[string]string{"app": "web"}), sel(map[string]string{"com.docker.compose.project": "shop"})} {
				if Key(p) == key && Matches(p, tg.Labels) {
					out = append(out, tg.Addrs...)
				}
			}
		}
		return out
	}
	db := store.NetworkPolicy{Name: "db", PodSelector: sel(map[string]string{"app": "db"}), PolicyTypes: []string{store.PolicyIngress},
		Ingress: []store.PolicyRule{{
			Peers: []store.PolicyPeer{{PodSelector: &store.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
			Ports: []store.PolicyPort{{Protocol: "TCP", Port: 5432}}}}}
	shop := store.NetworkPolicy{Name: "shop-only", PodSelector: sel(map[string]string{"com.docker.compose.project": "shop"}),
		PolicyTypes: []string{store.PolicyIngress},
		Ingress:     []store.PolicyRule{{Peers: []store.PolicyPeer{{PodSelector: &store.LabelSelector{MatchLabels: map[string]string{"com.docker.compose.project": "shop"}}}}}}}
	egress := store.NetworkPolicy{Name: "web-out", PodSelector: sel(map[string]string{"app": "web"}), PolicyTypes: []string{store.PolicyEgress},
		Egress: []store.PolicyRule{{Peers: []store.PolicyPeer{{IPBlock: &store.IPBlock{CIDR: netip.MustParsePrefix("10.0.0.0/24"),
			Except: []netip.Prefix{netip.MustParsePrefix("10.0.0.3/32")}}}}, Ports: []store.PolicyPort{{Protocol: "TCP", Port: 5000, EndPort: 6000}}}}}
	return Input{Policies: []store.NetworkPolicy{shop, egress, db}, Targets: targets, Selected: selected}
}

func TestCompileGroups(t *testing.T) {
	m := Compile(fixture())
	if !slices.Equal(m.Policies, []string{"db", "shop-only", "web-out"}) || !m.Ingress || !m.Egress {
		t.Fatalf("policies %v ingress %v egress %v", m.Policies, m.Ingress, m.Egress)
	}
	db, _ := m.Target(netip.MustParseAddr("10.0.0.2"))
	if db.Ingress == nil || !slices.Equal(db.Ingress.Policies, []string{"db", "shop-only"}) || db.Egress != nil {
		t.Fatalf("db: %+v", db)
	}
	if len(db.Ingress.Rules) != 2 || db.Ingress.Rules[0].Policy != "db" || db.Ingress.Rules[0].Text != "from podSelector app=web, port 5432/TCP" {
		t.Fatalf("db rules: %+v", db.Ingress.Rules)
	}
	web, _ := m.Target(netip.MustParseAddr("10.0.0.1"))
	blog, _ := m.Target(netip.MustParseAddr("10.0.0.3"))
	if web.Egress == nil || blog.Egress == nil || web.Egress != blog.Egress {
		t.Fatalf("web and blog-web share one egress group: %+v %+v", web.Egress, blog.Egress)
	}
	if blog.Ingress != nil {
		t.Fatalf("blog-web is selected by no ingress policy: %+v", blog.Ingress)
	}
	n, _ := m.Target(netip.MustParseAddr("10.0.0.4"))
	if !n.PendingIngress || !n.PendingEgress || n.Ingress != nil {
		t.Fatalf("unknown labels: %+v, want pending both ways", n)
	}
	if p := m.Peers[db.Ingress.Rules[0].Peers[0].Set]; p == nil || len(p.Addrs) != 2 {
		t.Fatalf("app=web peer set: %+v", p)
	}
}

func TestDecide(t *testing.T) {
	m := Compile(fixture())
	a := netip.MustParseAddr
	cases := []struct {
		name     string
		c        Conn
		want     bool
		ruleText string
	}{
		{"web to db 5432", Conn{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), Proto: "TCP", Port: 5432}, true, "policy db, ingress rule 1"},
		{"web to db 22", Conn{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), Proto: "TCP", Port: 22}, false, ""},
		{"blog-web to db: policies add up", Conn{Src: a("10.0.0.3"), Dst: a("10.0.0.2"), Proto: "TCP", Port: 5432}, true, "policy web-out, egress rule 1"},
		{"blog-web to db 22: no egress rule", Conn{Src: a("10.0.0.3"), Dst: a("10.0.0.2"), Proto: "TCP", Port: 22}, false, ""},
		{"outside to db 5432", Conn{Src: a("192.0.2.1"), Dst: a("10.0.0.2"), Proto: "TCP", Port: 5432}, false, ""},
		{"outside to blog", Conn{Src: a("192.0.2.1"), Dst: a("10.0.0.3"), Proto: "TCP", Port: 1}, true, ""},
		{"web egress in range", Conn{Src: a("10.0.0.1"), Dst: a("10.0.0.9"), Proto: "TCP", Port: 5999}, true, "policy web-out, egress rule 1"},
		{"web egress to except", Conn{Src: a("10.0.0.1"), Dst: a("10.0.0.3"), Proto: "TCP", Port: 5999}, false, ""},
		{"web egress udp", Conn{Src: a("10.0.0.1"), Dst: a("10.0.0.9"), Proto: "UDP", Port: 5999}, false, ""},
		{"self", Conn{Src: a("10.0.0.2"), Dst: a("10.0.0.2"), Proto: "TCP", Port: 1}, true, ""},
		{"from its host", Conn{Src: a("192.0.2.1"), Dst: a("10.0.0.2"), Proto: "TCP", Port: 22, FromHost: true}, true, ""},
		{"pending", Conn{Src: a("10.0.0.3"), Dst: a("10.0.0.4"), Proto: "TCP", Port: 1}, false, ""},
	}
	for _, c := range cases {
		d := m.Decide(c.c)
		if d.Allowed != c.want {
			t.Errorf("%s: allowed %v, want %v (egress: %s; ingress: %s)", c.name, d.Allowed, c.want, d.Egress.Reason, d.Ingress.Reason)
		}
		if c.ruleText != "" && !strings.Contains(d.Egress.Reason+d.Ingress.Reason, c.ruleText) {
			t.Errorf("%s: reasons %q / %q do not name %q", c.name, d.Egress.Reason, d.Ingress.Reason, c.ruleText)
		}
	}
}
