package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/podnet/podnet/store"
)

// Fake containers (-containers M per host): the records a podnetd keeps
// for each running container — its endpoint metadata, the cluster DNS's
// name index and, when a service selects it, its selection index key —
// written as a podnetd of this version writes them (store's dnsindex.go
// and selindex.go). -services S adds S services, each selecting
// -per-service containers spread over the hosts; the other containers
// carry a label nothing selects.

// fakeContainer is one fake container, from which its keys are derived
// (at the start, and again at the cleanup).
type fakeContainer struct {
	host, ep string
	meta     store.EndpointMeta
	selected bool
}

// containerOf is container j of host i.
func containerOf(o options, i, j int, blocks []netip.Prefix, now time.Time) fakeContainer {
	host := fmt.Sprintf("%s%05d", o.name, i)
	ep := fmt.Sprintf("%s-%05d-%03d", o.name, i, j)
	// Addresses from the host's blocks, .2 upwards in each.
	per := (1 << (32 - o.blockBits)) - 4
	ip := nthAddr(blocks[(j/per)%len(blocks)], 2+j%per)
	app, selected := o.name+"plain", false
	if o.services > 0 {
		total := o.hosts * o.containers
		step := max(total/(o.services*o.perService), 1)
		if g := i*o.containers + j; g%step == 0 && g/step < o.services*o.perService {
			app, selected = fmt.Sprintf("%ssvc%04d", o.name, (g/step)%o.services), true
		}
	}
	return fakeContainer{host: host, ep: ep, selected: selected, meta: store.EndpointMeta{
		Endpoint: ep, Network: o.name + "net", Container: ep, Name: fmt.Sprintf("%sc%05d-%03d", o.name, i, j),
		Labels: map[string]string{"app": app, "com.docker.compose.project": o.name}, IPv4: ip, Ready: true, Updated: now}}
}

// ops are the writes that create (or, del, delete) the container's keys.
func (c fakeContainer) ops(del bool) []store.Op {
	if del {
		return append([]store.Op{store.Delete(store.EndpointMetaKey(c.host, c.ep)), store.Delete(store.SelectedEndpointKey(c.host, c.ep))},
			store.DNSIndexOps(c.host, c.ep, &c.meta, nil)...)
	}
	ops := append([]store.Op{store.Put(store.EndpointMetaKey(c.host, c.ep), c.meta)}, store.DNSIndexOps(c.host, c.ep, nil, &c.meta)...)
	if c.selected {
		ops = append(ops, store.Put(store.SelectedEndpointKey(c.host, c.ep), c.meta))
	}
	return ops
}

// serviceOf is fake service k.
func serviceOf(o options, k int) store.Service {
	// VIPs from the top of the default service CIDR (10.96.0.0/12),
	// away from what the registry hands out first.
	vip := netip.AddrFrom4([4]byte{10, 111, byte(128 + k>>8), byte(k)})
	return store.Service{Name: fmt.Sprintf("%ssvc%04d", o.name, k), Selector: map[string]string{"app": fmt.Sprintf("%ssvc%04d", o.name, k)},
		ClusterIP: vip, Ports: []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 80}}, Created: time.Now().UTC(), Updated: time.Now().UTC()}
}

// containersOp writes (or deletes) every fake container and service, a
// few transactions at once; it returns how many containers and how many
// of them selected.
func containersOp(ctx context.Context, st *store.Store, o options, blocks [][]netip.Prefix, del bool) (n, selected int, err error) {
	now := time.Now().UTC()
	batches := make(chan []store.Op)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for ops := range batches {
				if _, _, err := st.Txn(ctx, nil, ops); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var batch []store.Op
	send := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case batches <- batch:
			batch = nil
			return true
		case err = <-errs:
			return false
		}
	}
	ok := true
	for k := 0; k < o.services && ok; k++ {
		s := serviceOf(o, k)
		if del {
			batch = append(batch, store.Delete(store.ServiceKey(s.Name)))
		} else {
			batch = append(batch, store.Put(store.ServiceKey(s.Name), s))
		}
		if len(batch) >= 100 {
			ok = send()
		}
	}
	for i := 0; i < o.hosts && ok; i++ {
		for j := 0; j < o.containers && ok; j++ {
			c := containerOf(o, i, j, blocks[i], now)
			n++
			if c.selected {
				selected++
			}
			ops := c.ops(del)
			if len(batch)+len(ops) > 100 {
				ok = send()
			}
			batch = append(batch, ops...)
		}
	}
	if ok {
		send()
	}
	close(batches)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	return n, selected, err
}
