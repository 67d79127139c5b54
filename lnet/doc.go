// Package lnet keeps the cluster-wide definitions of podnet networks
// (lnets/<first pool>) and the VXLAN VNIs they hold (vnis/<vni>).
//
// # Design notes
//
//   - Docker never tells a plugin a network's name and creates a network
//     independently on every host, so the definition is keyed by the
//     network's first subnet: every host creating a Docker network on that
//     subnet must agree with it.
//   - Agreement, not repetition: options a host's request leaves out are
//     inherited from the definition (so `docker network create -d podnet
//     --ipam-driver podnet --subnet S -o mode=vxlan n` works on the second
//     host without repeating -o mtu or -o podnet.vni), while options it gives
//     must match, and the error names the existing definition.
//   - A definition and its VNI are created in one transaction (both keys
//     absent), so two hosts racing to define the same subnet, or two
//     subnets racing for one VNI, end with exactly one winner; the loser
//     re-reads and checks, or tries the next VNI.
//   - Definitions made by a host's Docker network go with the last such
//     network. Named definitions (podnetctl network create) stay until an
//     operator removes them (Deleting), and then go with the last network.
package lnet
