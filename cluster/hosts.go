package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/lnet"
	"github.com/podnet/podnet/overlay/wireguard"
	"github.com/podnet/podnet/store"
)

// Hosts lists every host podnet knows, live or not.
func (m *Manager) Hosts(ctx context.Context) ([]admin.HostStatus, error) {
	kvs, _, err := m.st.List(ctx, store.HostsPrefix)
	if err != nil {
		return nil, err
	}
	alive, err := m.aliveHosts(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*admin.HostStatus{}
	for _, kv := range kvs {
		var h store.Host
		if err := kv.Decode(&h); err != nil {
			return nil, err
		}
		byName[h.Name] = hostStatus(h)
	}
	for name, a := range alive {
		hs, ok := byName[name]
		if !ok {
			hs = hostStatus(store.Host{Name: name})
			byName[name] = hs
		}
		hs.Alive, hs.Started, hs.Version = true, a.Started, a.Version
	}
	pools, _, err := m.st.List(ctx, store.PoolsPrefix)
	if err != nil {
		return nil, err
	}
	for _, kv := range pools {
		var p store.Pool
		if err := kv.Decode(&p); err != nil {
			return nil, err
		}
		pp := p.Subnet.Masked()
		blocks, _, err := m.st.List(ctx, store.BlocksPrefix(pp))
		if err != nil {
			return nil, err
		}
		for _, b := range blocks {
			k, err := store.ParseIPAMKey(pp, b.Key)
			if err != nil {
				return nil, err
			}
			var blk store.Block
			if err := b.Decode(&blk); err != nil {
				return nil, err
			}
			if hs, ok := byName[blk.Host]; ok {
				hs.Blocks = append(hs.Blocks, k.Block)
			}
		}
	}
	out := make([]admin.HostStatus, 0, len(byName))
	for name, hs := range byName {
		n, err := m.st.Count(ctx, store.EndpointsPrefix(name))
		if err != nil {
			return nil, err
		}
		hs.Endpoints = int(n)
		slices.SortFunc(hs.Blocks, netip.Prefix.Compare)
		out = append(out, *hs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// hostStatus is what a host record says of a host.
func hostStatus(h store.Host) *admin.HostStatus {
	hs := &admin.HostStatus{Name: h.Name, Underlay: h.Underlay, Encryption: store.EncryptionNone}
	if wg := h.WireGuard; wg != nil {
		hs.Encryption, hs.PublicKey, hs.WireGuardPort = store.EncryptionWireGuard, wg.PublicKey, wg.Port
		if k, err := wireguard.ParseKey(wg.PublicKey); err == nil {
			hs.KeyFingerprint = wireguard.Fingerprint(k)
		} else {
			hs.KeyFingerprint = "invalid"
		}
	}
	return hs
}

// RemoveHost forgets a host that is gone for good: its blocks and
// addresses return to the pools, its records go. Refused while it is
// alive.
func (m *Manager) RemoveHost(ctx context.Context, name string) error {
	alive, err := m.aliveHosts(ctx)
	if err != nil {
		return err
	}
	if _, ok := alive[name]; ok {
		return inputf("host %s is alive (its podnetd holds a liveness lease): stop its podnetd first, or wait for the lease to expire", name)
	}
	if _, err := m.st.Get(ctx, store.HostKey(name), nil); errors.Is(err, store.ErrNotFound) {
		return inputf("no host %s is known (podnetctl host ls lists them)", name)
	} else if err != nil {
		return fmt.Errorf("read host %s: %w", name, err) // etcd's trouble, not the caller's
	}
	nets, _, err := m.st.List(ctx, store.NetworksPrefix(name))
	if err != nil {
		return err
	}
	n, err := m.ipam.ReleaseHostBlocks(ctx, name)
	if err != nil {
		return fmt.Errorf("release the blocks of host %s: %w", name, err)
	}
	if err := store.DeleteHostNames(ctx, m.st, name); err != nil {
		return err
	}
	_, _, err = m.st.Txn(ctx, nil, []store.Op{
		store.DeletePrefix(store.NetworksPrefix(name)),
		store.DeletePrefix(store.EndpointsPrefix(name)),
		store.DeletePrefix(store.EndpointMetaPrefix(name)),
		store.DeletePrefix(store.ContainerMetaPrefix(name)),
		store.DeletePrefix(store.SelectedEndpointsOf(name)),
		store.DeletePrefix(store.SelectedContainersOf(name)),
		store.DeletePrefix(store.ServiceStatusPrefix(name)),
		store.Delete(store.HostKey(name)),
	})
	if err != nil {
		return fmt.Errorf("remove the records of host %s: %w", name, err)
	}
	// Definitions only this host still used go with it.
	for _, kv := range nets {
		var nw store.Network
		if err := kv.Decode(&nw); err != nil {
			m.log.Warn("undecodable network record of a removed host: its definition is left for podnetctl network rm", "key", kv.Key, "err", err)
			continue
		}
		if err := lnet.Release(ctx, m.st, lnet.FirstPool(&nw)); err != nil {
			return err
		}
	}
	m.log.Info("host removed", "host", name, "blocksReleased", n)
	return nil
}
