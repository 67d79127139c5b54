// Package driver is podnet's Docker NetworkDriver: networks and endpoints
// per mode (bridge.go holds bridge and none, vxlan.go vxlan, lan.go
// macvlan and ipvlan with macvlan.go/ipvlan.go, parent.go their VLAN and
// isolated parents), their records in etcd, restore at start and garbage
// collection against Docker's view.
//
// # Design notes
//
//   - Hot path. CreateEndpoint is one veth pair (created directly in the
//     host namespace with MTU, MAC and bridge already set) and one etcd
//     transaction that writes the endpoint and names it owner of its
//     address. Join is a map lookup: it never touches the kernel because the
//     container's namespace may not exist yet. No handler calls the Docker
//     API (dockerd may be waiting on us: deadlock) or waits on an unbounded
//     etcd call (the store puts deadlines on everything).
//   - Validation first. parseOptions hands mode, every -o key and value and
//     the subnets to netspec.Validate (the rules podnetctl network create
//     applies too, so both refuse the same things with the same words) and
//     checks that the subnets came from podnet's IPAM, before any kernel or
//     etcd change. Each create step registers its undo; one success flag runs
//     them on failure, so a failed create leaves no bridge, veth, rule or key.
//   - One network, many hosts. Docker sends no name and never replays
//     CreateNetwork, so a network is recorded per host under
//     networks/<host>/<id>, and the cluster-wide definition (mode, MTU, VNI,
//     podnet.* options) under lnets/<first pool>: a host creating the same
//     subnet with different options is refused with the existing definition
//     in the message. The definition goes when the last host's network goes.
//   - Gateway. The bridge holds the gateway address, the same on every host
//     (IPAM hands out the first address of the subnet, deterministically),
//     with a MAC derived from the pool so it is the same everywhere too.
//     Join returns it as the default gateway, except on --internal networks
//     (no default route: they reach nothing outside). DisableGatewayService
//     is always set: podnet does outbound NAT and -p itself, so Docker must
//     never add docker_gwbridge.
//   - MAC. Docker's MAC wins; without one podnet derives 02:70:<IPv4> and
//     returns it (the only field a reply may fill), so docker inspect shows it.
//   - MTU is the driver's job (Docker never passes --mtu to remote
//     drivers): both veth ends and the bridge get the network's MTU.
//   - Deletes tolerate absence and keep going past failures: Docker ignores
//     their errors and forgets the object anyway, and Leave/DeleteEndpoint
//     may never come at all (dockerd crash, plugin down). GC, run by the
//     reconciler with Docker's view of the host, removes endpoints and
//     networks Docker no longer has (after a grace period, so endpoints in
//     the middle of a container start are safe) and podnet links no record
//     explains. It decides under the exclusive lock and tears endpoints
//     down outside it (each Unpublish dumps the conntrack table): a
//     container start during a GC of hundreds of endpoints takes its usual
//     milliseconds instead of waiting for the whole round.
//   - Restore reads this host's records at start, re-ensures bridges
//     (idempotent: running containers keep their veths and traffic), and
//     hands the whole desired NAT state to the data plane (package dataplane) for one atomic sync.
//   - macvlan and ipvlan (lan.go). CreateEndpoint makes the container's
//     sub-interface pnv<ep> on the parent in the host namespace, left down
//     for Docker to move and configure; Join returns the LAN's gateway,
//     none on an isolated segment or for ipvlan l3/l3s (a default route
//     through the device, as Docker's ipvlan). Addresses come from the
//     cluster-wide pool like every mode's. CreateNetwork creates and
//     deletes a probe sub-interface (or the host-access shim), so a
//     kernel without ipvlan, a busy parent or a mode conflict fails the
//     network create, not the first docker run. The checks that need no
//     kernel are netspec's (its options table and lan.go), shared with
//     podnetctl's entry point; those that do read the parent's existing
//     sub-interfaces: ipvlan's mode and flag belong to the parent, so a
//     second network in another mode would silently switch the first one's.
//   - The LAN's own subnet. netspec.CheckSafe refuses a subnet overlapping
//     a network of the host's interfaces; IPAM lifts that at RequestPool
//     for --ipam-opt parent=IFACE, but Docker never shows IPAM options to
//     the driver, so CreateNetwork applies the rule again with the mode and
//     parent in hand (checkSubnetsSafe): only a macvlan/ipvlan network's
//     own parent lifts it, and a bridge network given --ipam-opt parent is
//     still refused.
//   - Host access. A parent never delivers its own traffic to its
//     sub-interfaces; the shim pn-<net> (a sub-interface in the host
//     namespace with a /32 from the pool) is the host's way in. It takes
//     the bridge's name so the NAT engine treats it as the network's
//     host-side interface; dataplane.Network.LAN makes it masquerade
//     published and service connections into it, whose replies would
//     otherwise bypass the host, and keeps the LAN's subnet out of the pod
//     subnets (reverse-path guard, outbound masquerade of other networks).
//   - VLAN parents are podnet's only when an etcd record (vlans/<host>/)
//     written before the link says so; restore and GC remove recorded
//     links no network uses, so a kill -9 at any point leaves nothing.
//   - CNI attachments (attach.go): endpoints made for a CNI runtime's
//     container (package cniattach) take the same steps as Docker's, with
//     the published ports and the container's metadata in the endpoint's
//     transaction. Docker never knew them, so GC against Docker keeps
//     them (they go with their network, by DEL or CNI GC, or once
//     DeadAttachments finds their container gone); only bridge and vxlan
//     networks take them.
//   - Network policy (policy.go). CreateEndpoint (and a CNI Attach)
//     hands the new endpoint to the policy agent before answering, so it
//     is isolated before Docker can start the container; an endpoint the
//     agent could not isolate fails the start. Bridges get
//     nf_call_iptables and nf_call_ip6tables (ip link set … type bridge),
//     with br_netfilter loaded if the kernel lacks it: traffic between
//     containers of one bridge is bridged, and only br_netfilter passes it
//     through the forward hook where policies filter it. The bridge's own
//     option, not the namespace's bridge-nf-call-* sysctls, which would
//     send every other bridge's traffic through iptables too.
//   - Interface names (pn-<net>, pnh<ep>, pnc<ep>, pnv<ep>, pnp<net>,
//     pnd<net>, pne<net>) are an upgrade contract.
package driver
