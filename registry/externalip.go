package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/podnet/podnet/store"
)

// External IPs (Kubernetes' CVE-2020-8554 class): a service's external IP
// captures every packet to that address and port on every host, from the
// host itself and its containers too. So an external IP must come from
// the cluster's allow-list (--external-ip-cidrs, a cluster fact like the
// service CIDR; empty by default: none allowed), and never be an address
// podnet or the underlay lives on, whatever the allow-list says.

// ErrExternalIPCIDRs is returned by EnsureExternalIPCIDRs when this
// podnetd's --external-ip-cidrs disagree with the cluster's.
var ErrExternalIPCIDRs = errors.New("external IP CIDRs refused")

// ParseExternalIPCIDRs reads --external-ip-cidrs: CIDRs in canonical form
// (masked, sorted, without duplicates). An address alone is its /32 or
// /128.
func ParseExternalIPCIDRs(in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("--external-ip-cidrs %q: want CIDRs (192.0.2.0/24) or addresses", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out), nil
}

func prefixesText(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// EnsureExternalIPCIDRs records cidrs as the cluster's allow-list of
// external IPs, or checks them against the one recorded: hosts with
// different lists would program different services. To change it, stop
// every podnetd, delete the key (etcdctl del /podnet/v1/externalipcidrs)
// and start them with the new list.
func EnsureExternalIPCIDRs(ctx context.Context, st *store.Store, cidrs []netip.Prefix, host string) error {
	for range 10 {
		var rec store.ExternalIPCIDRs
		_, err := st.Get(ctx, store.ExternalIPCIDRsKey, &rec)
		switch {
		case err == nil && slices.Equal(rec.CIDRs, cidrs):
			return nil
		case err == nil:
			return fmt.Errorf("%w: --external-ip-cidrs %s disagrees with the cluster's %s (recorded by host %s on %s): start podnetd with --external-ip-cidrs %s",
				ErrExternalIPCIDRs, prefixesText(cidrs), prefixesText(rec.CIDRs), rec.Host, rec.Since.Format(time.RFC3339),
				strings.ReplaceAll(prefixesText(rec.CIDRs), "none", `""`))
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("read the cluster's external IP CIDRs: %w", err)
		}
		_, err = st.Create(ctx, store.ExternalIPCIDRsKey, store.ExternalIPCIDRs{CIDRs: cidrs, Host: host, Since: time.Now().UTC()})
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("record the cluster's external IP CIDRs: %w", err)
		}
	}
	return fmt.Errorf("record the cluster's external IP CIDRs: etcd keeps changing under it; retry")
}

// CheckExternalIP is the part of the external-IP rules that needs nothing
// but the service range: a unicast address of the service family, inside
// the allow-list, outside the service CIDR.
func (r ServiceRange) CheckExternalIP(a netip.Addr) error {
	switch {
	case a.Is4() != r.CIDR.Addr().Is4():
		return fmt.Errorf("external IP %s: the service CIDR %s is of the other address family", a, r.CIDR)
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("external IP %s cannot receive service traffic (unspecified, loopback, multicast, link-local or broadcast)", a)
	case r.CIDR.Contains(a):
		return fmt.Errorf("external IP %s lies in the service CIDR %s: VIPs are allocated from it", a, r.CIDR)
	case len(r.ExternalCIDRs) == 0:
		return fmt.Errorf("external IP %s: this cluster allows no external IPs (podnetd --external-ip-cidrs is empty): start every podnetd with --external-ip-cidrs naming the ranges services may take", a)
	case !slices.ContainsFunc(r.ExternalCIDRs, func(p netip.Prefix) bool { return p.Contains(a) }):
		return fmt.Errorf("external IP %s is outside the cluster's --external-ip-cidrs %s", a, prefixesText(r.ExternalCIDRs))
	}
	return nil
}

// ControlAddrs are the addresses no external IP may be, whatever the
// allow-list says, with why: every registered host's underlay address,
// its network's own and broadcast addresses and its gateway, every etcd
// member's address, and the podnet pools (Pools).
type ControlAddrs struct {
	Addrs map[netip.Addr]string
	Pools []netip.Prefix
}

// why says why a may not be an external IP ("" when it may).
func (c ControlAddrs) why(a netip.Addr) string {
	if w, ok := c.Addrs[a]; ok {
		return w
	}
	for _, p := range c.Pools {
		if p.Contains(a) {
			return "a pod address (podnet pool " + p.String() + ")"
		}
	}
	return ""
}

// loadControlAddrs reads what ControlAddrs holds from etcd: hosts/,
// pools/ and etcd's member list.
func loadControlAddrs(ctx context.Context, st *store.Store, log *slog.Logger) (ControlAddrs, error) {
	c := ControlAddrs{Addrs: map[netip.Addr]string{}}
	hosts, _, err := st.List(ctx, store.HostsPrefix)
	if err != nil {
		return c, fmt.Errorf("list hosts: %w", err)
	}
	for _, kv := range hosts {
		var h store.Host
		if kv.Decode(&h) != nil {
			continue
		}
		h.ReservedAddrs(func(a netip.Addr, why string) {
			if _, ok := c.Addrs[a]; !ok {
				c.Addrs[a] = why
			}
		})
	}
	pools, _, err := st.List(ctx, store.PoolsPrefix)
	if err != nil {
		return c, fmt.Errorf("list pools: %w", err)
	}
	for _, kv := range pools {
		if p, err := store.PoolOfKey(kv.Key); err == nil {
			c.Pools = append(c.Pools, p)
		}
	}
	eps, err := st.ControlAddrPorts(ctx, log)
	if err != nil {
		return c, fmt.Errorf("etcd member list: %w", err)
	}
	for _, ep := range eps {
		if a := ep.Addr().Unmap(); a.IsValid() {
			if _, ok := c.Addrs[a]; !ok {
				c.Addrs[a] = "the address of an etcd member"
			}
		}
	}
	return c, nil
}
