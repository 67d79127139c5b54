// Package netspec is the one validator of a podnet network spec: its
// mode, every -o option and its value, and its subnets. Every entry point
// calls it — the driver's CreateNetwork (docker network create), podnetctl
// network create (through podnetd's cluster package), IPAM's RequestPool
// for the subnet rules, and the overlay for VNI and MTU ranges — so a
// value one of them accepts is never refused by another. It is pure: no
// etcd, no netlink, no Docker; podnetctl may link it.
//
// # Design notes
//
//   - Why one function. A definition podnetctl stored in etcd with an
//     option the driver refuses (a typo: podnet.masqurade=false) made every
//     host's network sync retry forever, and the definition outlived the
//     command. Validate runs before anything is stored, with the same rules
//     and the same error text the docker CLI shows from the driver
//     ("unknown option ..."), so such a definition is never written.
//   - The input is Docker's own shape: the -o KEY=VALUE map (with "mode" in
//     it) plus subnets. podnetctl's --mode, --mtu and --vni flags are folded
//     into that map (mode, mtu, podnet.vni) before validation; a flag and an
//     -o option that disagree are refused.
//   - Options are a table (options.go). Each entry names the modes it
//     applies to, whether every host of a network must agree on it (Shared:
//     the cluster-wide definition keeps those), and a setter that checks the
//     value and stores it in Options. Adding a mode's option (macvlan's
//     parent, ipvlan_mode, ...) is one entry plus its value checker; adding
//     a mode is one entry in modes. Unknown keys are refused, so a typo never
//     silently does nothing; a near miss is named ("did you mean ...").
//   - Known and available modes differ: vxlan is implemented but
//     unavailable on a podnetd without a multi-host setup (the modes table
//     can also list a mode before it is implemented). Validate takes the
//     caller's available modes and answers ErrModeUnavailable for a known
//     mode outside them.
//   - Shared options with a default (the macvlan/ipvlan modes, the ipvlan
//     flag, podnet.host-access) have it recorded in a new cluster-wide
//     definition (SharedDefaults), so a host giving the default explicitly
//     agrees with one that left it out. Options that combine (host access
//     needs a mode whose sub-interfaces talk to each other; --internal
//     excludes a parent) are checked once every option is parsed
//     (ParseOptions, CheckOptions); lan.go holds the macvlan/ipvlan rules.
//   - Subnet safety (safety.go): CheckSafe refuses reserved ranges and, where
//     the host is known, subnets of the host's own interfaces; the one
//     exception, a macvlan/ipvlan network on its parent's LAN, is
//     CheckSafeBeside, which every entry point applies for the interface
//     the network names (IPAM: --ipam-opt parent; driver and podnetctl:
//     the network's parent).
//   - Subnets are checked in subnet.go (checkSubnet, called for every
//     subnet of every entry point, and CheckSubnet for IPAM's RequestPool):
//     rules about which address ranges a network may use belong there.
//   - Errors wrap fault.ErrInvalid (or ErrModeUnavailable) so callers classify
//     them by identity; their text is the message a user sees, naming the
//     option or subnet and what to do.
//
// # podnetctl and -o
//
// podnetctl follows the docker CLI on the command that mirrors one:
// `podnetctl network create` takes driver options as -o/--opt KEY=VALUE,
// exactly like `docker network create`. The commands that print (status,
// network ls, endpoint ls, pool ls, host ls, gc, service, apply) take
// -o/--output table|json|yaml, like kubectl; an unknown format is an error on every one of
// them, and a value containing "=" is refused with a hint that it looks
// like a driver option. Commands that print nothing structured (network
// rm, host rm) have no -o at all, so a stray -o is an error there too.
package netspec
