package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
)

// checkSums lists every set of the service section and checks that
// svc-sums holds the sum of exactly the elements the kernel has, for
// exactly the sets that get one.
func (l *lab) checkSums() {
	l.t.Helper()
	l.do(func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		t := inetTable(l.eng.opts.Table)
		sets, err := c.GetSets(t)
		if err != nil {
			return err
		}
		var ksums map[string]elemSum
		got := map[string]elemSum{}
		for _, s := range sets {
			if s.Anonymous {
				continue
			}
			els, err := c.GetSetElements(s)
			if err != nil {
				return fmt.Errorf("list %s: %w", s.Name, err)
			}
			if s.Name == setSvcSums {
				ksums = kernelSums(els)
				continue
			}
			if _, ok := sumName(s.Name); !ok || s.Dynamic || s.Interval {
				continue
			}
			var sum elemSum
			for _, g := range els {
				el := element{key: g.Key, keyEnd: g.IntervalEnd, comment: g.Comment, val: g.Val}
				if s.IsMap && (s.DataType.GetNFTMagic() == nftables.TypeVerdict.GetNFTMagic() ||
					s.KeyType.GetNFTMagic() == nftables.TypeVerdict.GetNFTMagic()) {
					if el.verdict, err = parseVerdict(g.Val); err != nil {
						return err
					}
					el.val = nil
				}
				sum = sum.plus(hashElement(el))
			}
			got[string(sumElement(s.Name, sum).key)] = sum
		}
		delete(ksums, string(sumElement(chainsSumKey, elemSum{}).key)) // chains: TestKernelRestartKeepsChains
		if len(ksums) != len(got) {
			return fmt.Errorf("svc-sums has %d sums, the section %d sets that get one", len(ksums), len(got))
		}
		for k, want := range got {
			if ksums[k] != want {
				return fmt.Errorf("svc-sums for %q is %x, its elements sum to %x", k, ksums[k], want)
			}
		}
		return nil
	})
}

// TestKernelSumsFollowChanges: after a full sync and after each kind of
// incremental change (an endpoint replaced, buckets going and coming,
// a service gone, one added, one refused for a conflict), svc-sums holds
// the sums of what the kernel's maps hold.
func TestKernelSumsFollowChanges(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.addNetwork(l.bridge(1))
	svcs := testServices()
	l.do(func() error { return setServices(l.eng, svcs) })
	l.checkSums()
	many := svcs[slices.IndexFunc(svcs, func(s Service) bool { return s.Name == "many" })]
	web := svcs[slices.IndexFunc(svcs, func(s Service) bool { return s.Name == "web" })]
	steps := []struct {
		name string
		fn   func() error
	}{
		{"endpoint replaced", func() error {
			web.Endpoints[1].Addr = netip.MustParseAddr("10.200.1.9")
			return upsertService(l.eng, web)
		}},
		{"buckets go", func() error {
			m := many
			m.Endpoints = m.Endpoints[:2]
			return upsertService(l.eng, m)
		}},
		{"buckets come back", func() error { return upsertService(l.eng, many) }},
		{"service gone", func() error { return deleteService(l.eng, "sticky") }},
		{"service added", func() error {
			return upsertService(l.eng, Service{Name: "new", ClusterIP: netip.MustParseAddr("10.96.0.40"),
				Ports:     []ServicePort{{Proto: TCP, Port: 80, TargetPort: 80, NodePort: 30090}},
				Endpoints: []ServiceEndpoint{{Addr: netip.MustParseAddr("10.200.1.2"), Local: true}}})
		}},
		{"conflict", func() error {
			_ = upsertService(l.eng, Service{Name: "dup", ClusterIP: netip.MustParseAddr("10.96.0.40"),
				Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 80}}})
			return nil
		}},
	}
	for _, s := range steps {
		l.do(s.fn)
		t.Logf("after %s", s.name)
		l.checkSums()
	}
	l.checkTable(l.currentRuleset())
}

// TestKernelRestartTrustsSums: a restarted engine's first Replace believes
// svc-sums: an endpoint changed while podnetd was down is found (its
// sets' sums differ) and fixed alone; an element deleted behind podnet's
// back is not (the sums still say it is there), and the next Replace,
// which lists every set, puts it back.
func TestKernelRestartTrustsSums(t *testing.T) {
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
	replace := func() Result {
		var res Result
		l.do(func() (err error) {
			res, err = l.eng.Apply(l.ctx, Change{Services: ServiceChanges{Replace: true, Upsert: svcs}})
			return err
		})
		return res
	}

	restart()
	i := slices.IndexFunc(svcs, func(s Service) bool { return s.Name == "many" })
	// The last endpoint moved: still last in address order, so only its
	// bucket's element changes (a new engine assigns buckets afresh).
	svcs[i].Endpoints[11].Addr = netip.MustParseAddr("10.244.9.9")
	if res := replace(); res.Kernel != 2 {
		t.Errorf("first Replace with one endpoint changed while down: %d kernel changes, want 2", res.Kernel)
	}
	l.checkTable(l.currentRuleset())
	l.checkSums()

	if out, err := l.nft("delete", "element", "inet", "podnet", "svc-ip4-b0", "{ 10.96.0.10 . tcp . 80 }"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	restart()
	if res := replace(); res.Kernel != 0 {
		t.Errorf("first Replace after a restart: %d kernel changes, want 0 (it believes the sums)", res.Kernel)
	}
	if res := replace(); res.Kernel != 1 {
		t.Errorf("second Replace: %d kernel changes, want 1 (the deleted element back)", res.Kernel)
	}
	l.checkTable(l.currentRuleset())
	l.checkSums()
}
