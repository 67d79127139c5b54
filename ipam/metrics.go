package ipam

import (
	"context"
	"errors"
	"math/big"
	"net/netip"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/store"
)

// Allocation kinds and failure reasons, as labelled in podnet_ipam_*.
const (
	kindDynamic  = "dynamic"
	kindExplicit = "explicit"
	kindGateway  = "gateway"

	reasonExhausted   = "exhausted"
	reasonEtcd        = "etcd"
	reasonUnknownPool = "unknown_pool"
)

// observeRequest records the outcome of one RequestAddress.
func observeRequest(r *ipam.RequestAddressRequest, err error) {
	if err != nil {
		metrics.IPAMAllocationFailures.WithLabelValues(failureReason(err)).Inc()
		return
	}
	p, perr := parsePoolID(r.PoolID)
	if perr != nil {
		return
	}
	kind := kindDynamic
	if gw, _ := isGatewayRequest(r.Options); gw {
		kind = kindGateway
	} else if r.Address != "" {
		kind = kindExplicit
	}
	metrics.IPAMAllocations.WithLabelValues(p.String(), kind).Inc()
}

func failureReason(err error) string {
	switch {
	case errors.Is(err, errExhausted):
		return reasonExhausted
	case errors.Is(err, store.ErrUnavailable):
		return reasonEtcd
	case errors.Is(err, errUnknownPool):
		return reasonUnknownPool
	}
	return metrics.Other
}

// Usage reports, for every pool this process has loaded, the blocks this
// host claimed, the container addresses it holds and the pool's usable
// addresses, from memory (it is called at every metrics scrape).
func (m *IPAM) Usage() []metrics.PoolUsage {
	m.mu.Lock()
	states := make([]*poolState, 0, len(m.pools))
	for _, ps := range m.pools {
		states = append(states, ps)
	}
	m.mu.Unlock()
	out := make([]metrics.PoolUsage, 0, len(states))
	for _, ps := range states {
		ps.mu.Lock()
		if ps.loaded {
			usable, _ := new(big.Float).SetInt(usableCount(ps.prefix, ps.rng)).Float64()
			out = append(out, metrics.PoolUsage{Pool: ps.prefix.String(), Blocks: len(ps.blocks), Addresses: len(ps.mine), Usable: usable})
		}
		ps.mu.Unlock()
	}
	return out
}

// Preload loads pools this host uses (its restored networks' pools) before
// Docker asks for them, so that Usage covers them right after a restart
// and the first allocation needs no extra reads. Pools that no longer
// exist are skipped; other errors are logged and left to the first
// request, which loads again.
func (m *IPAM) Preload(ctx context.Context, pools []netip.Prefix) {
	for _, p := range pools {
		if err := m.ensureLoaded(ctx, m.state(p.Masked())); err != nil && !errors.Is(err, errUnknownPool) {
			m.log.Warn("pool not preloaded", "pool", p, "err", err)
		}
	}
}
