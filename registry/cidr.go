package registry

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/podnet/podnet/store"
)

// ErrServiceCIDR is returned by EnsureServiceCIDR when this podnetd's
// --service-cidr cannot be the cluster's: it disagrees with the recorded
// one, or overlaps an address pool.
var ErrServiceCIDR = errors.New("service CIDR refused")

// EnsureServiceCIDR records cidr as the cluster's service CIDR, or checks
// it against the one recorded: every podnetd of a cluster must use the
// same, or hosts would program different VIPs. The CIDR may not overlap a
// podnet address pool; recording it is conditioned on the pools being as
// listed, so a pool created meanwhile cannot slip in (and ipam refuses new
// pools overlapping it).
func EnsureServiceCIDR(ctx context.Context, st *store.Store, cidr netip.Prefix, host string) error {
	cidr = cidr.Masked()
	for range 10 {
		var rec store.ServiceCIDR
		_, err := st.Get(ctx, store.ServiceCIDRKey, &rec)
		switch {
		case err == nil && rec.CIDR != cidr:
			return fmt.Errorf("%w: --service-cidr %s disagrees with the cluster's service CIDR %s (recorded by host %s on %s): start podnetd with --service-cidr %s",
				ErrServiceCIDR, cidr, rec.CIDR, rec.Host, rec.Since.Format(time.RFC3339), rec.CIDR)
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("read the cluster's service CIDR: %w", err)
		}
		pools, rev, err := st.List(ctx, store.PoolsPrefix)
		if err != nil {
			return fmt.Errorf("check the service CIDR against the pools: %w", err)
		}
		for _, kv := range pools {
			p, err := store.PoolOfKey(kv.Key)
			if err == nil && p.Overlaps(cidr) {
				return fmt.Errorf("%w: --service-cidr %s overlaps the address pool %s of a podnet network: pick a service CIDR outside every pool",
					ErrServiceCIDR, cidr, p)
			}
		}
		if err == nil && rec.CIDR == cidr {
			return nil
		}
		ok, _, err := st.Txn(ctx,
			[]store.Cmp{store.Absent(store.ServiceCIDRKey), store.PrefixUnchangedSince(store.PoolsPrefix, rev)},
			[]store.Op{store.Put(store.ServiceCIDRKey, store.ServiceCIDR{CIDR: cidr, Host: host, Since: time.Now().UTC()})})
		if err != nil {
			return fmt.Errorf("record the cluster's service CIDR: %w", err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("record the cluster's service CIDR %s: etcd keeps changing under it; retry", cidr)
}
