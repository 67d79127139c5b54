// Package bgp is this host's BGP speaker for LoadBalancer addresses:
// GoBGP (github.com/osrg/gobgp/v3) as a library, driven by package
// lbannounce through Apply (the peers that select this host and the
// addresses to announce), reporting its sessions (Sessions, and the
// podnet_bgp_session_up and podnet_bgp_routes_advertised series).
//
// # Design notes
//
//   - A real implementation, not BGP by hand: GoBGP handles the session
//     state machine, capabilities, 4-byte ASNs, hold timers and TCP MD5
//     (BGPPeer.password, set on the socket by GoBGP).
//   - It connects, it does not listen: GoBGP starts with ListenPort -1, so
//     port 179 stays free for a routing daemon the host may run, and the
//     router must accept the hosts' connections (BIRD and FRR do by
//     default). Each session speaks from the host's underlay address
//     (Transport.LocalAddress), which is also the next hop of its routes:
//     a path is added with the unspecified next hop, which GoBGP replaces
//     by the session's local address.
//   - One /32 (/128) per address, origin IGP, to every peer of the
//     address's family (an IPv6 route over an IPv4 session would need a
//     next hop the host does not have there). ASNs: the smallest myASN of
//     the host's peers is the global AS, each peer's myASN its local AS,
//     so peers with different myASN work side by side.
//   - It accepts nothing: the global import policy takes only locally
//     originated paths (GoBGP runs those through the import policy too,
//     so a plain "reject" default would refuse them as well). A host
//     announces; it does not route by BGP, and a router's full table
//     would only cost memory.
//   - Started with the first peer and stopped (StopBgp: a Cease
//     notification to every peer, so routers withdraw at once) with the
//     last and on podnetd's clean stop. The BgpServer object lives for the
//     process: its Serve loop never returns, so it is started once.
//   - Session state comes from GoBGP's peer watch; a change wakes the
//     announcer, which writes it to this host's speaker record in etcd.
package bgp
