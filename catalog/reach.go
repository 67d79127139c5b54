package catalog

import (
	"strings"

	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// Reachability: which hosts can send service traffic to an endpoint. A
// host's data plane DNATs to endpoints of every host, but the packet only
// arrives where the network carries it: a bridge network is a segment of
// its own host (other hosts have no route to it, and the data plane drops
// what is not DNATed locally), an --internal network reaches nothing
// beyond itself, and a macvlan/ipvlan container sits on the LAN, where
// other hosts reach it and its own host only through a host-access shim.
// Each host therefore programs only the endpoints it can reach (a host
// with none rejects at once instead of timing out), and `service get`
// says from where an endpoint is reachable when that is not everywhere.

// reach is from which hosts an endpoint is reachable.
type reach int

const (
	reachAll     reach = iota // every host
	reachOwn                  // only its own host
	reachOthers               // every host but its own
	reachNowhere              // no host
)

// netInfo is what reachability depends on of one Docker network on one
// host (networks/<host>/<id>).
type netInfo struct {
	mode       string
	internal   bool
	hostAccess bool
}

// netKey keys networks: host and Docker network ID.
func netKey(host, id string) string { return host + "/" + id }

// reachOfNet says from where endpoints of network n are reachable, and
// why not from everywhere.
func reachOfNet(n netInfo) (reach, string) {
	switch n.mode {
	case netspec.ModeVXLAN:
		if n.internal {
			return reachOwn, "an --internal network"
		}
		return reachAll, ""
	case netspec.ModeMacvlan, netspec.ModeIpvlan:
		switch {
		case n.internal:
			return reachNowhere, "an --internal " + n.mode + " segment"
		case !n.hostAccess:
			return reachOthers, "a " + n.mode + " network without podnet.host-access (its host cannot reach it)"
		}
		return reachAll, ""
	case netspec.ModeNone:
		return reachNowhere, "a network of mode none"
	}
	if n.internal {
		return reachOwn, "an --internal single-host network"
	}
	return reachOwn, "a single-host (bridge) network"
}

// reachLocked says from where m is reachable at the address the service
// uses (the endpoint whose address addrOf picked), and why not from
// everywhere. A network not known yet counts as reachable from every
// host, as before podnet knew better.
func (c *Catalog) reachLocked(m *member, v6 bool) (reach, string) {
	switch m.mode {
	case modeHost:
		return reachAll, ""
	case modeContainer:
		if p := c.members[ctrKey{m.key.host, m.parent}]; p != nil && p.mode != modeContainer {
			return c.reachLocked(p, v6)
		}
		return reachAll, ""
	}
	key, _ := bestEndpoint(m, v6)
	n, ok := c.nets[netKey(m.key.host, c.epmeta[key].Network)]
	if !ok {
		return reachAll, ""
	}
	return reachOfNet(n)
}

// from says whether host reaches an endpoint of host own with reach r.
func (r reach) from(host, own string) bool {
	switch r {
	case reachOwn:
		return host == own
	case reachOthers:
		return host != own
	case reachNowhere:
		return false
	}
	return true
}

// text is how `service get` says r of an endpoint on host own ("" for
// every host).
func (r reach) text(own, why string) string {
	switch r {
	case reachOwn:
		return "only from host " + own + ": " + why
	case reachOthers:
		return "not from host " + own + ": " + why
	case reachNowhere:
		return "from no host: " + why
	}
	return ""
}

// applyNetwork keeps nets in line with networks/<host>/<id>; a change
// can move any service's endpoints in or out of reach, so every service
// is marked (networks change rarely).
func (c *Catalog) applyNetwork(kv store.KV, deleted bool) {
	host, id, ok := store.SplitHostKey(kv.Key, store.NetworksPrefix(""))
	if !ok {
		return
	}
	k := netKey(host, id)
	var now netInfo
	if !deleted {
		var n store.Network
		if kv.Decode(&n) != nil {
			return
		}
		now = netInfo{mode: strings.ToLower(n.Mode), internal: n.Internal, hostAccess: n.HostAccess.IsValid()}
	}
	old, had := c.nets[k]
	if deleted {
		if !had {
			return
		}
		delete(c.nets, k)
	} else {
		if had && old == now {
			return
		}
		c.nets[k] = now
	}
	c.all = true
}
