package registry

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/store"
)

// checkPools refuses, before anything is written, pools that overlap
// another pool (in etcd or in the same file), the service CIDR or a
// podnet pool, that hold a host's underlay address or an etcd member's,
// or that would leave out an address a service holds.
func (r *Registry) checkPools(ctx context.Context, lb *lbState, pools []store.LBPool) error {
	if len(pools) == 0 {
		return nil
	}
	podnet, _, err := r.podnetPools(ctx)
	if err != nil {
		return err
	}
	members, err := r.memberAddrs(ctx)
	if err != nil {
		return err
	}
	all := lb.with(pools)
	for _, p := range pools {
		if err := r.checkPool(all, podnet, members, p); err != nil {
			return err
		}
		if old, ok := lb.pool(p.Name); ok {
			if err := lb.checkShrink(old, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPool checks p against the other pools of lb and the cluster.
func (r *Registry) checkPool(lb *lbState, podnet []netip.Prefix, members []netip.Addr, p store.LBPool) error {
	for _, c := range p.CIDRs {
		for _, q := range lb.pools {
			if q.Name == p.Name {
				continue
			}
			for _, d := range q.CIDRs {
				if c.Overlaps(d) {
					return inputf("load-balancer pool %s: %s overlaps %s of pool %s: pools never share an address", p.Name, c, d, q.Name)
				}
			}
		}
		if c.Overlaps(r.svcRange.CIDR) {
			return inputf("load-balancer pool %s: %s overlaps the service CIDR %s: VIPs come from it", p.Name, c, r.svcRange.CIDR)
		}
		for _, q := range podnet {
			if c.Overlaps(q) {
				return inputf("load-balancer pool %s: %s overlaps podnet pool %s: container addresses come from it", p.Name, c, q)
			}
		}
		for a, h := range lb.hosts {
			if c.Contains(a) {
				return inputf("load-balancer pool %s: %s holds %s, the underlay address of host %s: an L2 pool may lie on the hosts' LAN, but never take a host's address",
					p.Name, c, a, h)
			}
		}
		for _, a := range members {
			if c.Contains(a) {
				return inputf("load-balancer pool %s: %s holds %s, an etcd member's address", p.Name, c, a)
			}
		}
	}
	return nil
}

// checkShrink refuses a change of a pool that leaves out an address a
// service holds.
func (lb *lbState) checkShrink(old, p store.LBPool) error {
	for a, svc := range lb.claims {
		if old.Contains(a) && !p.Contains(a) {
			return inputf("load-balancer pool %s: %s (service %s) would no longer be in the pool: change or remove that service first", p.Name, a, svc)
		}
	}
	return nil
}

// podnetPools lists the podnet address pools.
func (r *Registry) podnetPools(ctx context.Context) ([]netip.Prefix, int64, error) {
	kvs, rev, err := r.st.List(ctx, store.PoolsPrefix)
	if err != nil {
		return nil, 0, fmt.Errorf("list pools: %w", err)
	}
	var out []netip.Prefix
	for _, kv := range kvs {
		if p, err := store.PoolOfKey(kv.Key); err == nil {
			out = append(out, p)
		}
	}
	return out, rev, nil
}

// applyPool creates p or updates the pool of that name, checked again
// against a fresh listing and written only if nothing it was checked
// against changed meanwhile (pools, podnet pools, taken addresses).
func (r *Registry) applyPool(ctx context.Context, p store.LBPool) (string, error) {
	for range maxTxnAttempts {
		lb, err := r.loadLB(ctx)
		if err != nil {
			return "", err
		}
		podnet, podnetRev, err := r.podnetPools(ctx)
		if err != nil {
			return "", err
		}
		members, err := r.memberAddrs(ctx)
		if err != nil {
			return "", err
		}
		if err := r.checkPool(lb.with([]store.LBPool{p}), podnet, members, p); err != nil {
			return "", err
		}
		cmps := []store.Cmp{store.PrefixUnchangedSince(store.LBPoolsPrefix, lb.poolsRev),
			store.PrefixUnchangedSince(store.PoolsPrefix, podnetRev)}
		action := admin.ActionCreated
		p.Created = time.Now().UTC()
		p.Updated = p.Created
		if old, ok := lb.pool(p.Name); ok {
			if samePool(old, p) {
				return admin.ActionUnchanged, nil
			}
			if err := lb.checkShrink(old, p); err != nil {
				return "", err
			}
			action, p.Created = admin.ActionConfigured, old.Created
			cmps = append(cmps, store.PrefixUnchangedSince(store.LBIPsPrefix, lb.claimsRev))
		}
		ok, _, err := r.st.Txn(ctx, cmps, []store.Op{store.Put(store.LBPoolKey(p.Name), p)})
		if err != nil {
			return "", fmt.Errorf("write load-balancer pool %s: %w", p.Name, err)
		}
		if ok {
			r.log.Info("load-balancer pool "+action, "pool", p.Name, "cidrs", p.CIDRs, "mode", p.Mode)
			return action, nil
		}
	}
	return "", fmt.Errorf("apply load-balancer pool %s: pools keep changing concurrently; retry", p.Name)
}

// RemovePool deletes a pool; found is false when there was none of that
// name. A pool some service holds an address of is refused, naming them.
func (r *Registry) RemovePool(ctx context.Context, name string) (bool, error) {
	if err := r.probe(ctx); err != nil {
		return false, err
	}
	for range maxTxnAttempts {
		lb, err := r.loadLB(ctx)
		if err != nil {
			return false, err
		}
		p, ok := lb.pool(name)
		if !ok {
			return false, nil
		}
		var used []string
		for a, svc := range lb.claims {
			if p.Contains(a) {
				used = append(used, fmt.Sprintf("%s (service %s)", a, svc))
			}
		}
		if len(used) > 0 {
			slices.Sort(used)
			return false, inputf("load-balancer pool %s has addresses in use: %s: remove those services (or change their type) first",
				name, strings.Join(used, ", "))
		}
		ok, _, err = r.st.Txn(ctx, []store.Cmp{store.ModRevIs(store.LBPoolKey(name), lb.poolRevs[name]),
			store.PrefixUnchangedSince(store.LBIPsPrefix, lb.claimsRev)},
			[]store.Op{store.Delete(store.LBPoolKey(name))})
		if err != nil {
			return false, fmt.Errorf("remove load-balancer pool %s: %w", name, err)
		}
		if ok {
			r.log.Info("load-balancer pool removed", "pool", name)
			return true, nil
		}
	}
	return false, fmt.Errorf("remove load-balancer pool %s: it keeps changing concurrently; retry", name)
}

// checkPeers refuses peers at a host's own address, and two peers with
// the same address that a host would both speak to.
func (r *Registry) checkPeers(_ context.Context, lb *lbState, peers []store.BGPPeer) error {
	all := slices.Clone(lb.peers)
	for _, p := range peers {
		all = slices.DeleteFunc(all, func(q store.BGPPeer) bool { return q.Name == p.Name })
	}
	all = append(all, peers...)
	for _, p := range peers {
		if err := checkPeer(lb, all, p); err != nil {
			return err
		}
	}
	return nil
}

func checkPeer(lb *lbState, all []store.BGPPeer, p store.BGPPeer) error {
	if h, ok := lb.hosts[p.PeerAddress]; ok {
		return inputf("BGP peer %s: peerAddress %s is the underlay address of host %s, not a router's", p.Name, p.PeerAddress, h)
	}
	for _, q := range all {
		if q.Name == p.Name || q.PeerAddress != p.PeerAddress {
			continue
		}
		if len(p.Hosts) == 0 || len(q.Hosts) == 0 || slices.ContainsFunc(p.Hosts, q.Selects) {
			return inputf("BGP peer %s: peer %s has the same peerAddress %s for some of the same hosts: a host has one session per router",
				p.Name, q.Name, p.PeerAddress)
		}
	}
	return nil
}

// applyPeer creates p or updates the peer of that name.
func (r *Registry) applyPeer(ctx context.Context, p store.BGPPeer) (string, error) {
	for range maxTxnAttempts {
		lb, err := r.loadLB(ctx)
		if err != nil {
			return "", err
		}
		if err := r.checkPeers(ctx, lb, []store.BGPPeer{p}); err != nil {
			return "", err
		}
		action := admin.ActionCreated
		p.Created = time.Now().UTC()
		p.Updated = p.Created
		i := slices.IndexFunc(lb.peers, func(q store.BGPPeer) bool { return q.Name == p.Name })
		if i >= 0 {
			if samePeer(lb.peers[i], p) {
				return admin.ActionUnchanged, nil
			}
			action, p.Created = admin.ActionConfigured, lb.peers[i].Created
		}
		ok, _, err := r.st.Txn(ctx, []store.Cmp{store.PrefixUnchangedSince(store.BGPPeersPrefix, lb.peersRev)},
			[]store.Op{store.Put(store.BGPPeerKey(p.Name), p)})
		if err != nil {
			return "", fmt.Errorf("write BGP peer %s: %w", p.Name, err)
		}
		if ok {
			r.log.Info("BGP peer "+action, "peer", p.Name, "address", p.PeerAddress, "peerASN", p.PeerASN, "myASN", p.MyASN)
			return action, nil
		}
	}
	return "", fmt.Errorf("apply BGP peer %s: peers keep changing concurrently; retry", p.Name)
}

// RemovePeer deletes a peer; found is false when there was none.
func (r *Registry) RemovePeer(ctx context.Context, name string) (bool, error) {
	if err := r.probe(ctx); err != nil {
		return false, err
	}
	found, _, err := r.st.Txn(ctx, []store.Cmp{store.Present(store.BGPPeerKey(name))},
		[]store.Op{store.Delete(store.BGPPeerKey(name))})
	if err != nil {
		return false, fmt.Errorf("remove BGP peer %s: %w", name, err)
	}
	if found {
		r.log.Info("BGP peer removed", "peer", name)
	}
	return found, nil
}

// Pools returns every pool (or only the one named) with its addresses
// in use, by name.
func (r *Registry) Pools(ctx context.Context, only string) ([]admin.LBPoolView, error) {
	lb, err := r.loadLB(ctx)
	if err != nil {
		return nil, err
	}
	var out []admin.LBPoolView
	for _, p := range lb.pools {
		if only != "" && p.Name != only {
			continue
		}
		st := &admin.LBPoolStatus{Created: p.Created, Updated: p.Updated, Size: poolSize(p), Used: []admin.LBAddressUse{}}
		var used []netip.Addr
		for a := range lb.claims {
			if p.Contains(a) {
				used = append(used, a)
			}
		}
		slices.SortFunc(used, netip.Addr.Compare)
		for _, a := range used {
			st.Used = append(st.Used, admin.LBAddressUse{IP: a.String(), Service: lb.claims[a]})
		}
		out = append(out, admin.LBPoolView{LBPoolSpec: PoolSpecOf(p), Status: st})
	}
	slices.SortFunc(out, func(a, b admin.LBPoolView) int { return strings.Compare(a.Name, b.Name) })
	if only != "" && len(out) == 0 {
		return nil, inputf("no load-balancer pool %s (podnetctl lbpool ls lists them)", only)
	}
	return out, nil
}

// Peers returns every BGP peer (or only the one named) with each host's
// session, by name.
func (r *Registry) Peers(ctx context.Context, only string) ([]admin.BGPPeerView, error) {
	lb, err := r.loadLB(ctx)
	if err != nil {
		return nil, err
	}
	hosts, err := r.Speakers(ctx)
	if err != nil {
		return nil, err
	}
	var out []admin.BGPPeerView
	for _, p := range lb.peers {
		if only != "" && p.Name != only {
			continue
		}
		st := &admin.BGPPeerStatus{Created: p.Created, Updated: p.Updated, Sessions: []admin.BGPSessionView{}}
		for _, h := range hosts {
			for _, s := range h.Sessions {
				if s.Peer == p.Name {
					st.Sessions = append(st.Sessions, s)
				}
			}
		}
		out = append(out, admin.BGPPeerView{BGPPeerSpec: PeerSpecOf(p), Status: st})
	}
	slices.SortFunc(out, func(a, b admin.BGPPeerView) int { return strings.Compare(a.Name, b.Name) })
	if only != "" && len(out) == 0 {
		return nil, inputf("no BGP peer %s (podnetctl bgppeer ls lists them)", only)
	}
	return out, nil
}

// Speakers returns every running announcer: its BGP sessions, the
// addresses it announces over BGP and those it answers ARP/NDP for, by
// host.
func (r *Registry) Speakers(ctx context.Context) ([]admin.BGPHostView, error) {
	kvs, _, err := r.st.List(ctx, store.LBSpeakersPrefix)
	if err != nil {
		return nil, fmt.Errorf("list announcers: %w", err)
	}
	l2, err := r.l2Claims(ctx)
	if err != nil {
		return nil, err
	}
	out := []admin.BGPHostView{}
	for _, kv := range kvs {
		var sp store.LBSpeaker
		if err := kv.Decode(&sp); err != nil {
			continue
		}
		v := admin.BGPHostView{Host: sp.Host, Interface: sp.Interface, Sessions: []admin.BGPSessionView{},
			Announced: []string{}, L2: []string{}, Updated: sp.Updated}
		for _, s := range sp.Sessions {
			v.Sessions = append(v.Sessions, admin.BGPSessionView{Host: sp.Host, Peer: s.Peer, Address: s.Address.String(),
				State: s.State, Since: s.Since, Routes: s.Routes})
		}
		for _, a := range sp.Announced {
			v.Announced = append(v.Announced, a.String())
		}
		for a, c := range l2 {
			if c.Host == sp.Host {
				v.L2 = append(v.L2, a.String())
			}
		}
		slices.Sort(v.L2)
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b admin.BGPHostView) int { return strings.Compare(a.Host, b.Host) })
	return out, nil
}

// l2Claims lists which host answers for each L2 address.
func (r *Registry) l2Claims(ctx context.Context) (map[netip.Addr]store.L2Claim, error) {
	kvs, _, err := r.st.List(ctx, store.L2ClaimsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list L2 announcements: %w", err)
	}
	out := map[netip.Addr]store.L2Claim{}
	for _, kv := range kvs {
		var c store.L2Claim
		if a, ok := store.AddrOfKey(kv.Key, store.L2ClaimsPrefix); ok && kv.Decode(&c) == nil {
			out[a] = c
		}
	}
	return out, nil
}

// lbStatus says where a LoadBalancer service's address is announced.
func (r *Registry) lbStatus(lb *lbState, l2 map[netip.Addr]store.L2Claim, speakers []admin.BGPHostView, s store.Service) *admin.LoadBalancerStatus {
	if !s.LoadBalancerIP.IsValid() {
		return nil
	}
	st := &admin.LoadBalancerStatus{IP: s.LoadBalancerIP.String(), Announcers: []string{}}
	p, ok := lb.poolOf(s.LoadBalancerIP)
	if !ok {
		return st
	}
	st.Pool, st.Mode = p.Name, p.Mode
	if p.Mode == store.LBModeL2 {
		if c, ok := l2[s.LoadBalancerIP]; ok {
			st.Announcers = append(st.Announcers, c.Host)
		}
		return st
	}
	for _, h := range speakers {
		if slices.Contains(h.Announced, st.IP) {
			st.Announcers = append(st.Announcers, h.Host)
		}
	}
	return st
}
