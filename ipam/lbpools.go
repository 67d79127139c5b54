package ipam

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/podnet/podnet/store"
)

// lbPools lists the CIDRs of the LoadBalancer pools (lbpools/), by the
// pool's name: no podnet pool may overlap them, as none may overlap the
// service CIDR (the registry refuses the other direction). rev is the
// listing's revision, which a new pool's transaction is conditioned on.
func (m *IPAM) lbPools(ctx context.Context) (map[netip.Prefix]string, int64, error) {
	kvs, rev, err := m.st.List(ctx, store.LBPoolsPrefix)
	if err != nil {
		return nil, 0, fmt.Errorf("list load-balancer pools: %w", err)
	}
	out := map[netip.Prefix]string{}
	for _, kv := range kvs {
		var p store.LBPool
		if err := kv.Decode(&p); err != nil {
			m.log.Warn("undecodable load-balancer pool record", "key", kv.Key, "err", err)
			continue
		}
		for _, c := range p.CIDRs {
			out[c] = p.Name
		}
	}
	return out, rev, nil
}
