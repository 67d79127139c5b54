package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/podnet/podnet/store"
)

// naiveAllocator is the anchor of benchmark B12 (README.md, "Benchmarks"):
// the whole pool is one JSON bitmap key shared by every host, and each
// allocation is a Get plus Txn(If ModRevision unchanged, Then Put bitmap +
// Put address), retried on conflict — the shape of Kubernetes' ClusterIP
// bitmap and of a block-less Calico. It lives in a _test.go file so that
// it is never shipped.
type naiveAllocator struct {
	st        *store.Store
	pool      netip.Prefix
	host      string
	conflicts *atomic.Int64
}

type naiveBitmap struct {
	Bits []byte `json:"bits"` // one bit per address of the pool, base64 in JSON
}

func naiveKey(pool netip.Prefix) string { return "naive/" + store.PoolName(pool) }

// naiveInit writes the empty bitmap of pool.
func naiveInit(ctx context.Context, st *store.Store, pool netip.Prefix) error {
	bm := naiveBitmap{Bits: make([]byte, (1<<hostBits(pool))/8)}
	_, err := st.Create(ctx, naiveKey(pool), bm)
	return err
}

func (n *naiveAllocator) allocate(ctx context.Context) (netip.Addr, error) {
	size := 1 << hostBits(n.pool)
	for {
		var bm naiveBitmap
		rev, err := n.st.Get(ctx, naiveKey(n.pool), &bm)
		if err != nil {
			return netip.Addr{}, err
		}
		idx := -1
		for i := 1; i < size-1; i++ { // skip network and broadcast
			if bm.Bits[i/8]&(1<<(i%8)) == 0 {
				idx = i
				break
			}
		}
		if idx < 0 {
			return netip.Addr{}, fmt.Errorf("naive: pool %s full", n.pool)
		}
		bm.Bits[idx/8] |= 1 << (idx % 8)
		a := nthSubnet(n.pool, n.pool.Addr().BitLen(), uint64(idx)).Addr()
		ok, _, err := n.st.Txn(ctx, []store.Cmp{store.ModRevIs(naiveKey(n.pool), rev)}, []store.Op{
			store.Put(naiveKey(n.pool), bm),
			store.Put(store.AddrKey(n.pool, a), store.Address{IP: a, Kind: store.AddrContainer, Host: n.host}),
		})
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return a, nil
		}
		n.conflicts.Add(1)
	}
}
