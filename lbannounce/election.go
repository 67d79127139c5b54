package lbannounce

import (
	"hash/fnv"
	"net/netip"
	"slices"
)

// L2 election. Every candidate host computes the same order of the
// candidates for an address (rendezvous hashing: a hash of the address and
// the host name), so addresses spread over the hosts, and each waits its
// rank times the claim delay before trying to create the claim: the
// first in the order usually wins without a race, and when it cannot
// (its link is down, it is gone but its lease is not yet) the next one
// takes over a claim delay later. The claim itself is a create on
// absence in etcd, so two hosts never both win.

// score orders the candidates of address a: lower first.
func score(a netip.Addr, host string) uint64 {
	h := fnv.New64a()
	b := a.As16()
	h.Write(b[:])
	h.Write([]byte(host))
	return h.Sum64()
}

// rank is host's place among candidates for a (0: first); -1 when host is
// not a candidate.
func rank(a netip.Addr, host string, candidates []string) int {
	if !slices.Contains(candidates, host) {
		return -1
	}
	mine := score(a, host)
	r := 0
	for _, c := range candidates {
		if c == host {
			continue
		}
		if s := score(a, c); s < mine || (s == mine && c < host) {
			r++
		}
	}
	return r
}
