package dataplane

import (
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"testing"
)

// ruleHandles maps every rule of the table (chain and text) to its
// handle: a chain the sync flushed and filled again has new handles.
func (l *lab) ruleHandles() map[string]string {
	l.t.Helper()
	out, err := l.nft("-a", "list", "table", "inet", "podnet")
	if err != nil {
		l.t.Fatalf("%v: %s", err, out)
	}
	handles := map[string]string{}
	chain := ""
	chainRe := regexp.MustCompile(`^\tchain (\S+) \{`)
	ruleRe := regexp.MustCompile(`^\t\t(.*) # handle (\d+)$`)
	for _, line := range regexp.MustCompile("\n").Split(out, -1) {
		if m := chainRe.FindStringSubmatch(line); m != nil {
			chain = m[1]
		} else if m := ruleRe.FindStringSubmatch(line); m != nil && chain != "" {
			handles[chain+": "+m[1]] = m[2]
		}
	}
	return handles
}

// TestKernelRestartKeepsChains: a restarted engine's first Replace leaves
// every chain alone when the kernel holds what it wants (the service
// section's by the sum in svc-sums, the rest because the engine's own
// Sync wrote them just before): no rule gets a new handle, also after an
// incremental change that added a service chain (which wrote the
// section's new sum). With a service that changed shape while podnetd
// was down, it rewrites the service chains and the table is right.
func TestKernelRestartKeepsChains(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	web := l.bridge(1)
	l.addNetwork(web)
	svcs := testServices()
	l.do(func() error { return setServices(l.eng, svcs) })
	restart := func() {
		old := l.eng
		l.eng = New(Options{Logger: old.log})
		l.eng.Restore([]Network{web}, nil)
		l.do(func() error { return l.eng.Sync(l.ctx) })
	}
	replace := func() {
		l.do(func() error { return setServices(l.eng, svcs) })
	}
	changed := func(before, after map[string]string) []string {
		var out []string
		for _, k := range slices.Sorted(maps.Keys(after)) {
			if before[k] != after[k] {
				out = append(out, k)
			}
		}
		return out
	}

	restart()
	before := l.ruleHandles()
	replace()
	if c := changed(before, l.ruleHandles()); len(c) != 0 {
		t.Errorf("first Replace after a restart rewrote rules the kernel already held: %q", c)
	}
	l.checkTable(l.currentRuleset())

	// A second Replace rewrites every chain (it repairs drift).
	before = l.ruleHandles()
	replace()
	if c := changed(before, l.ruleHandles()); len(c) == 0 {
		t.Error("a later Replace rewrote no chain")
	}

	// An incremental change that adds a range chain (five endpoints: a
	// size no other service has) writes the section's chain sum.
	five := Service{Name: "five", ClusterIP: netip.MustParseAddr("10.96.0.50"),
		Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 80}}}
	for i := 2; i < 7; i++ {
		five.Endpoints = append(five.Endpoints, ServiceEndpoint{Addr: netip.AddrFrom4([4]byte{10, 200, 1, byte(i)})})
	}
	l.do(func() error { return upsertService(l.eng, five) })
	svcs = append(svcs, five)
	restart()
	before = l.ruleHandles()
	replace()
	if c := changed(before, l.ruleHandles()); len(c) != 0 {
		t.Errorf("first Replace after a restart that followed a change adding a chain rewrote: %q", c)
	}
	l.checkTable(l.currentRuleset())
	l.checkSums()

	// A service that changed shape while podnetd was down (four
	// endpoints: another range chain): the service chains are rewritten,
	// and the table is right.
	restart()
	svcs[len(svcs)-1].Endpoints = svcs[len(svcs)-1].Endpoints[:4]
	before = l.ruleHandles()
	replace()
	var svcRewritten bool
	for _, k := range changed(before, l.ruleHandles()) {
		svcRewritten = svcRewritten || regexp.MustCompile(`^svc-`).MatchString(k)
	}
	if !svcRewritten {
		t.Error("first Replace with a service changed while down kept every service chain")
	}
	l.checkTable(l.currentRuleset())
	l.checkSums()
}
