// Package nd answers IPv6 neighbor discovery from user space: the
// neighbor advertisement podnet sends for an address it answers for
// (Advert, shared by the load-balancer responder of package lbannounce
// and Proxy), and Proxy, which answers neighbor solicitations on one
// interface for targets a callback accepts — proxy NDP for a whole prefix
// without an entry per address, which the kernel cannot do (its proxy
// neighbor entries are one per address, and there is no proxy_arp for
// IPv6).
//
// # Design notes
//
// A packet socket, not an ICMPv6 socket. A neighbor solicitation goes to
// the target's solicited-node group (ff02::1:ff00:0/104 plus the target's
// last 24 bits); the kernel's IPv6 input drops multicast for groups the
// host has not joined before any ICMPv6 socket sees it, and a prefix holds
// up to 2^24 such groups. A bridge passes up every multicast frame it
// floods, so an AF_PACKET socket on it sees the solicitations whatever
// their group, and unicast ones (neighbor unreachability probes, sent to
// the MAC that answered) too. A classic BPF filter in the kernel keeps
// everything but IPv6 neighbor solicitations with hop limit 255 received
// (not sent) by the interface out of user space; the rest is checked in
// Go: length, version, checksum, the message itself.
//
// What is never answered: duplicate address detection (source ::) — an
// answer would make the prober's address fail; a multicast, loopback or
// link-local target; a solicitation whose source is the interface's own
// MAC. Everything else is asked of the callback, at most Rate times a
// second (then dropped, counted): a flood of solicitations costs a
// bounded share of a core and no memory, as Proxy keeps no state per
// sender or target.
//
// The answer is a solicited advertisement with the override flag clear,
// as RFC 4861 (7.2.8) asks of a proxy and as the kernel's own proxy does:
// if the owner of an address is on the link after all, its own answer
// (override set) wins in every neighbor cache.
package nd
