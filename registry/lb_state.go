package registry

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/podnet/podnet/store"
)

// lbState is what the registry checks load-balancer objects against,
// read from etcd: the pools (with their revisions, which a service's
// transaction is conditioned on), the peers, the taken addresses and
// the hosts' underlay addresses. Each listing's revision conditions the
// write that relied on it.
type lbState struct {
	pools    []store.LBPool
	poolRevs map[string]int64
	poolsRev int64
	peers    []store.BGPPeer
	peerRevs map[string]int64
	peersRev int64
	// claims maps a taken address to its service.
	claims    map[netip.Addr]string
	claimsRev int64
	// hosts maps a registered host's underlay address to its name.
	hosts map[netip.Addr]string
}

// loadLB reads the load-balancer state from etcd.
func (r *Registry) loadLB(ctx context.Context) (*lbState, error) {
	lb := &lbState{poolRevs: map[string]int64{}, peerRevs: map[string]int64{}, claims: map[netip.Addr]string{},
		hosts: map[netip.Addr]string{}}
	kvs, rev, err := r.st.List(ctx, store.LBPoolsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list load-balancer pools: %w", err)
	}
	lb.poolsRev = rev
	for _, kv := range kvs {
		var p store.LBPool
		if err := kv.Decode(&p); err != nil {
			r.log.Warn("skipping a malformed load-balancer pool record", "key", kv.Key, "err", err)
			continue
		}
		lb.pools = append(lb.pools, p)
		lb.poolRevs[p.Name] = kv.ModRev
	}
	if kvs, lb.peersRev, err = r.st.List(ctx, store.BGPPeersPrefix); err != nil {
		return nil, fmt.Errorf("list BGP peers: %w", err)
	}
	for _, kv := range kvs {
		var p store.BGPPeer
		if err := kv.Decode(&p); err != nil {
			r.log.Warn("skipping a malformed BGP peer record", "key", kv.Key, "err", err)
			continue
		}
		lb.peers = append(lb.peers, p)
		lb.peerRevs[p.Name] = kv.ModRev
	}
	if kvs, lb.claimsRev, err = r.st.List(ctx, store.LBIPsPrefix); err != nil {
		return nil, fmt.Errorf("list load-balancer addresses: %w", err)
	}
	for _, kv := range kvs {
		var c store.LBIPClaim
		a, ok := store.AddrOfKey(kv.Key, store.LBIPsPrefix)
		if ok && kv.Decode(&c) == nil {
			lb.claims[a] = c.Service
		}
	}
	if kvs, _, err = r.st.List(ctx, store.HostsPrefix); err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	for _, kv := range kvs {
		var h store.Host
		if kv.Decode(&h) == nil && h.Underlay.IsValid() {
			lb.hosts[h.Underlay.Unmap()] = h.Name
		}
	}
	return lb, nil
}

// with is lb with pools (of a file being applied) in place of the pools
// of the same names.
func (lb *lbState) with(pools []store.LBPool) *lbState {
	out := *lb
	out.pools = slices.Clone(lb.pools)
	for _, p := range pools {
		if i := slices.IndexFunc(out.pools, func(q store.LBPool) bool { return q.Name == p.Name }); i >= 0 {
			out.pools[i] = p
		} else {
			out.pools = append(out.pools, p)
		}
	}
	return &out
}

// poolOf is the pool holding a.
func (lb *lbState) poolOf(a netip.Addr) (store.LBPool, bool) {
	for _, p := range lb.pools {
		if p.Contains(a) {
			return p, true
		}
	}
	return store.LBPool{}, false
}

// pool is the pool of that name.
func (lb *lbState) pool(name string) (store.LBPool, bool) {
	i := slices.IndexFunc(lb.pools, func(p store.LBPool) bool { return p.Name == name })
	if i < 0 {
		return store.LBPool{}, false
	}
	return lb.pools[i], true
}

// poolsText lists the pools for messages.
func (lb *lbState) poolsText() string {
	if len(lb.pools) == 0 {
		return "there is none: apply a kind: LoadBalancerPool first"
	}
	out := make([]string, 0, len(lb.pools))
	for _, p := range lb.pools {
		cs := make([]string, 0, len(p.CIDRs))
		for _, c := range p.CIDRs {
			cs = append(cs, c.String())
		}
		out = append(out, fmt.Sprintf("%s %s (%s)", p.Name, strings.Join(cs, ","), p.Mode))
	}
	return "pools: " + strings.Join(out, "; ")
}

// memberAddrs are the addresses of etcd's members (client and peer URLs),
// which no load-balancer address may take.
func (r *Registry) memberAddrs(ctx context.Context) ([]netip.Addr, error) {
	urls, err := r.st.MemberURLs(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd member list: %w", err)
	}
	var out []netip.Addr
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			continue
		}
		host := pu.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if a, err := netip.ParseAddr(host); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}
