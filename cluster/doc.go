// Package cluster carries out the operator's cluster-wide requests that
// podnetctl sends to the local podnetd: define and remove named networks
// (every podnetd then creates or removes the matching Docker network on
// its own host, see reconcile.NetSync), list hosts, and forget a host that
// is gone for good.
//
// # Design notes
//
//   - podnetctl talks only to its local podnetd; every cluster-wide effect
//     goes through etcd and each host's own agents. No host ever calls
//     another host's Docker API, so a host that is down catches up when it
//     returns instead of failing the command.
//   - A definition is validated by netspec, with the driver's own rules,
//     before it is stored: one no host could create would leave every host's
//     network sync retrying it. podnetctl's --mode, --mtu, --vni and
//     --parent flags are folded into the -o options first (mode, mtu,
//     podnet.vni, parent), and the definition keeps only the options hosts
//     must share (with the defaults of those left out, as the driver
//     records them) plus a macvlan/ipvlan network's parent, which
//     --host-parent HOST=IFACE overrides per host (LogicalNetwork.Parents).
//     Such a network needs a parent: an isolated segment on each host is no
//     cluster-wide network. Its subnet may be the parent's own LAN: the
//     safety check lifts the refusal for this host's parent, and every
//     host's network sync passes its parent to IPAM as --ipam-opt parent.
//   - The requests and answers are package admin's wire types; podnetctl
//     decodes the same types without linking this package (or etcd).
//   - Removing a network refuses while any container on any host is
//     attached, listing them: removing it under running containers would
//     strand them.
//   - Forgetting a host refuses while it is alive: its blocks and
//     addresses are only released for a host that is really gone.
package cluster
