package catalog

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/podnet/podnet/store"
)

// TestCatalogMemoryAtScale: the catalog of one host of a 5000-host
// cluster with 1000 services selecting 10 containers each (10 000 in the
// selection index, the other containers of the cluster never reach it)
// holds well under the 50 MiB that docs/scale.md budgets for the
// catalog and the DNS together.
func TestCatalogMemoryAtScale(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	h0 := heap()
	c := New("h1", false, nil)
	enc := func(k string, v any) store.KV { b, _ := json.Marshal(v); return store.KV{Key: k, Value: b, ModRev: 1} }
	var svcs, sel, alive, hosts []store.KV
	for k := range 1000 {
		name := fmt.Sprintf("scfakesvc%04d", k)
		svcs = append(svcs, enc(store.ServiceKey(name), store.Service{Name: name, Selector: map[string]string{"app": name},
			ClusterIP: netip.AddrFrom4([4]byte{10, 111, byte(k >> 8), byte(k)}), Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80}}}))
	}
	for i := range 10000 {
		h := fmt.Sprintf("scfake%05d", i/2)
		ep := fmt.Sprintf("scfake-%05d-%03d", i/2, i%2)
		sel = append(sel, enc(store.SelectedEndpointKey(h, ep), store.EndpointMeta{Endpoint: ep, Network: "scfakenet", Container: ep, Name: "c" + ep,
			Labels: map[string]string{"app": fmt.Sprintf("scfakesvc%04d", i%1000), "com.docker.compose.project": "scfake"},
			IPv4:   netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}), Ready: true, Updated: time.Now()}))
	}
	for i := range 5000 {
		h := fmt.Sprintf("scfake%05d", i)
		alive = append(alive, enc(store.AliveKey(h), store.HostAlive{Name: h, MetaLayout: 2, Started: time.Now(), Version: "x"}))
		hosts = append(hosts, enc(store.HostKey(h), store.Host{Name: h, Underlay: netip.AddrFrom4([4]byte{10, 199, byte(i >> 8), byte(i)}), Since: time.Now()}))
	}
	h1 := heap()
	c.snapshot(store.ServicesPrefix, svcs)
	c.snapshot(store.AlivePrefix, alive)
	c.snapshot(store.HostsPrefix, hosts)
	c.snapshot(store.SelectedEndpoints, sel)
	h2 := heap()
	d := c.TakeDelta(true)
	h3 := heap()
	mib := float64(h2-h1) / (1 << 20)
	t.Logf("records as listed %.1f MiB; the catalog holding them %.1f MiB; a full delta of %d services %.1f MiB",
		float64(h1-h0)/(1<<20), mib, len(d.Services), float64(h3-h2)/(1<<20))
	if mib > 40 {
		t.Errorf("the catalog holds %.1f MiB for 10 000 selected containers, 1000 services and 5000 hosts, want ≤ 40 MiB", mib)
	}
	runtime.KeepAlive(svcs)
	runtime.KeepAlive(sel)
	runtime.KeepAlive(c)
	runtime.KeepAlive(d)
}
