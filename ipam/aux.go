package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// Aux addresses. Docker sends --aux-address requests exactly like --ip
// ones, but only while it creates the network, before CreateNetwork: an
// explicit request for a pool that no podnet network of this host uses
// yet is an aux address. It is recorded like the gateway, as an address
// of kind aux listing the hosts that reserved it, so every host creating
// the same network (a macvlan LAN's routers and printers) reserves the same
// addresses without conflict, no container on any host gets them, and the
// last host releasing one deletes it.

// isAuxRequest reports whether an explicit request for pool p comes from a
// network being created on this host.
func (m *IPAM) isAuxRequest(ctx context.Context, p netip.Prefix) (bool, error) {
	id, err := m.networkUsing(ctx, p)
	return id == "", err
}

// requestAux reserves a as an aux address of the pool for this host.
func (m *IPAM) requestAux(ctx context.Context, ps *poolState, a netip.Addr) (netip.Addr, error) {
	if why := netspec.ReservedReason(ps.prefix, a); why != "" {
		return netip.Addr{}, fmt.Errorf("aux address %s is %s of pool %s", a, why, ps.prefix)
	}
	ps.slow.Lock()
	defer ps.slow.Unlock()
	key := store.AddrKey(ps.prefix, a)
	for range maxTxnRetries {
		var rec store.Address
		rev, err := m.st.Get(ctx, key, &rec)
		var cmp store.Cmp
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = store.Address{IP: a, Kind: store.AddrAux, Hosts: []string{m.host}, Since: m.now()}
			cmp = store.Absent(key)
		case err != nil:
			return netip.Addr{}, fmt.Errorf("aux address %s of pool %s: %w", a, ps.prefix, err)
		case rec.Kind != store.AddrAux:
			return netip.Addr{}, fmt.Errorf("aux address %s of pool %s is already in use (%s)", a, ps.prefix, describe(rec))
		case slices.Contains(rec.Hosts, m.host):
			ps.markUsed(a)
			return a, nil
		default:
			rec.Hosts = append(rec.Hosts, m.host)
			cmp = store.ModRevIs(key, rev)
		}
		ok, _, err := m.st.Txn(ctx, []store.Cmp{cmp}, []store.Op{store.Put(key, rec)})
		if err != nil {
			return netip.Addr{}, fmt.Errorf("aux address %s of pool %s: %w", a, ps.prefix, err)
		}
		if ok {
			ps.markUsed(a)
			m.log.Info("aux address reserved", "pool", ps.prefix, "address", a, "hosts", rec.Hosts)
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("aux address %s of pool %s: gave up after %d attempts: other hosts keep changing it; retry", a, ps.prefix, maxTxnRetries)
}

// dropAuxHost removes host from every aux address of p (the host no
// longer uses the pool).
func (m *IPAM) dropAuxHost(ctx context.Context, p netip.Prefix, host string) error {
	kvs, _, err := m.st.List(ctx, store.AddrsPrefix(p))
	if err != nil {
		return fmt.Errorf("list addresses of pool %s: %w", p, err)
	}
	var errs []error
	for _, kv := range kvs {
		var rec store.Address
		if kv.Decode(&rec) != nil || rec.Kind != store.AddrAux || !slices.Contains(rec.Hosts, host) {
			continue
		}
		a, ok := addrFromKey(p, kv.Key)
		if !ok {
			continue
		}
		if _, err := m.removeSharedHost(ctx, p, a, host, store.AddrAux); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
