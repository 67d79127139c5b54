package portmap

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
	"syscall"

	"github.com/podnet/podnet/internal/testutil"
)

func TestZZCold(t *testing.T) {
	for _, n := range []int{1000, 5000, 1000, 5000} {
		ns := testutil.NewNetNS(t)
		ns.Do(func() error {
			var svcs []Service
			for i := 0; i < n; i++ {
				eps := make([]ServiceEndpoint, 10)
				for j := range eps {
					eps[j] = ServiceEndpoint{Addr: netip.AddrFrom4([4]byte{10, 100 + byte(j), byte(i >> 8), byte(i)})}
				}
				svcs = append(svcs, Service{Name: fmt.Sprintf("s%d", i), ClusterIP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}),
					Ports: []ServicePort{{Proto: TCP, Port: 80, TargetPort: 8080}}, Endpoints: eps})
			}
			e := New(Options{})
			t0 := time.Now()
			next := e.planServices(e.svc, svcs)
			e.svc = rebuildObjects(next, "pn-")
			t1 := time.Now()
			rs := buildRuleset(rulesetInput{table: "podnet", bridgePrefix: "pn-", nets: e.nets, eps: e.eps, services: e.svc})
			t2 := time.Now()
			var r0, r1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
			err := e.nft.syncTable(rs, func(string) bool { return true })
			syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			t.Logf("n=%d plan+objects %v ruleset %v sync %v (user %v sys %v) err %v", n, t1.Sub(t0), t2.Sub(t1), time.Since(t2),
				time.Duration(r1.Utime.Nano()-r0.Utime.Nano()), time.Duration(r1.Stime.Nano()-r0.Stime.Nano()), err)
			return nil
		})
	}
}
