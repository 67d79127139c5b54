package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/store"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// isolatedPrefix names the parent of a macvlan/ipvlan network without
// -o parent: pnd<network id[:12]>, a dummy link, or on a kernel without
// dummy a veth whose peer pne<network id[:12]> stays in the host
// namespace carrying nothing. (Not a bridge without ports: it has no
// carrier, and sub-interfaces of a parent without carrier send nothing,
// not even to each other.) Part of the interface-name contract.
const (
	isolatedPrefix     = "pnd"
	isolatedPeerPrefix = "pne"
)

func isolatedName(networkID string) string { return isolatedPrefix + dockerid.Short(networkID) }

// vlanAlias marks the VLAN links podnet creates (ip link set NAME alias
// ...) for `podnetd cleanup`, which runs without etcd; everything else
// goes by the etcd record.
const vlanAlias = "podnet: VLAN parent"

// vlanParents creates the 802.1q sub-interfaces named by -o parent=IFACE.VID
// when they are missing, and removes them with the last network using them
// — only those podnet created. What podnet created is recorded in etcd
// (vlans/<host>/<name>) before the link is made, so the fact survives a
// kill -9 at any point: at worst a record names a link that never came to
// be, which GC drops. A VLAN link someone else made has no record and is
// never deleted.
type vlanParents struct {
	st   *store.Store
	host string
	k    *link.Kernel
	log  *slog.Logger
}

// ensure returns the VLAN link name (base.vid), creating it on base when
// missing (ip link add link BASE name NAME type vlan id VID; ip link set
// NAME up).
func (v *vlanParents) ensure(name, base string, vid int) (netlink.Link, error) {
	if l, err := v.k.ByName(name); err == nil {
		return l, nil
	}
	baseLink, err := v.k.ByName(base)
	if link.IsNotFound(err) {
		return nil, fmt.Errorf("parent %s does not exist on host %s, and neither does %s to create VLAN %d on: name an existing interface (ip link)", name, v.host, base, vid)
	} else if err != nil {
		return nil, fmt.Errorf("look up %s: %w", base, err)
	}
	ctx := context.Background()
	key := store.VLANKey(v.host, name)
	rec := store.VLANLink{Name: name, Parent: base, VID: vid, Created: now()}
	recorded := false
	if _, err := v.st.Create(ctx, key, rec); err == nil {
		recorded = true
	} else if !errors.Is(err, store.ErrExists) { // exists: ours from an earlier network or run
		return nil, fmt.Errorf("record VLAN parent %s: %w", name, err)
	}
	vl := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: baseLink.Attrs().Index, TxQLen: -1}, VlanId: vid}
	if err := v.k.NL.LinkAdd(vl); err != nil {
		if recorded {
			_ = v.st.Delete(context.WithoutCancel(ctx), key)
		}
		if errors.Is(err, unix.EEXIST) {
			// Made by someone else in the meantime: theirs, use it.
			return v.k.ByName(name)
		}
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil, fmt.Errorf("parent %s: this host's kernel has no 802.1q VLAN support (CONFIG_VLAN_8021Q, module 8021q): load the module, or create %s yourself: %w", name, name, err)
		}
		return nil, fmt.Errorf("create VLAN %d on %s as %s: %w", vid, base, name, err)
	}
	l, err := v.k.ByName(name)
	if err == nil {
		err = v.k.NL.LinkSetAlias(l, vlanAlias)
	}
	if err == nil {
		err = v.k.NL.LinkSetUp(l)
	}
	if err != nil {
		_ = v.release(name)
		return nil, fmt.Errorf("set VLAN parent %s up: %w", name, err)
	}
	v.log.Info("VLAN parent created", "iface", name, "parent", base, "vlan", vid)
	return l, nil
}

// release deletes name and its record if podnet created it; a link
// without a record is someone else's and stays. Absence is fine.
func (v *vlanParents) release(name string) error {
	ctx := context.Background()
	key := store.VLANKey(v.host, name)
	var rec store.VLANLink
	if _, err := v.st.Get(ctx, key, &rec); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read VLAN parent record %s: %w", name, err)
	}
	if l, err := v.k.ByName(name); err == nil && l.Type() != "vlan" {
		// Replaced by something else of the same name: not ours any more.
		v.log.Warn("VLAN parent record names a link that is no VLAN; keeping the link", "iface", name, "type", l.Type())
	} else if err := v.k.DeleteLink(name); err != nil {
		return err
	}
	if err := v.st.Delete(ctx, key); err != nil {
		return fmt.Errorf("drop VLAN parent record %s: %w", name, err)
	}
	v.log.Info("VLAN parent removed", "iface", name)
	return nil
}

// gc releases the VLAN links podnet created that no network in use names
// (left by a kill -9 between creating one and recording its network, or a
// delete that failed half-way). It returns the names released.
func (v *vlanParents) gc(inUse map[string]bool) ([]string, error) {
	kvs, _, err := v.st.List(context.Background(), store.VLANsPrefix(v.host))
	if err != nil {
		return nil, fmt.Errorf("list VLAN parent records: %w", err)
	}
	var out []string
	var errs []error
	for _, kv := range kvs {
		name := strings.TrimPrefix(kv.Key, store.VLANsPrefix(v.host))
		if inUse[name] {
			continue
		}
		if err := v.release(name); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, name)
	}
	return out, errors.Join(errs...)
}

// ensureIsolated creates the parent of a network without -o parent: a
// dummy link, or a veth pair where the kernel has no dummy driver. Either
// way frames reach nothing beyond the network's own sub-interfaces (ip
// link add NAME type dummy; ip link set NAME up).
func ensureIsolated(k *link.Kernel, name string) (netlink.Link, error) {
	l, err := k.ByName(name)
	if err == nil {
		return l, k.NL.LinkSetUp(l)
	}
	if !link.IsNotFound(err) {
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	mac := isolatedMAC(name)
	err = k.NL.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: -1, HardwareAddr: mac}})
	peer := isolatedPeerPrefix + strings.TrimPrefix(name, isolatedPrefix)
	if errors.Is(err, unix.EOPNOTSUPP) {
		err = k.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: -1, HardwareAddr: mac}, PeerName: peer})
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create isolated parent %s: %w", name, err)
	}
	if p, err := k.ByName(peer); err == nil {
		if err := k.NL.LinkSetUp(p); err != nil {
			return nil, fmt.Errorf("set %s up: %w", peer, err)
		}
	}
	if l, err = k.ByName(name); err != nil {
		return nil, fmt.Errorf("isolated parent %s after create: %w", name, err)
	}
	return l, k.NL.LinkSetUp(l)
}

// isolatedMAC is a fixed locally administered MAC for an isolated parent
// (a dummy otherwise gets a random one each time it is created).
func isolatedMAC(name string) net.HardwareAddr {
	mac := net.HardwareAddr{0x02, 0x70, 0xfe, 0, 0, 0}
	for i, c := range []byte(name) {
		mac[3+i%3] ^= c
	}
	return mac
}
