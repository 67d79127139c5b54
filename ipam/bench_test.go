package ipam

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// Benchmarks B12 and B12c (README.md, "Benchmarks"). Not timed tests: run
//
//	TMPDIR=/dev/shm go test -run '^$' -bench 'B12' -benchtime 5x ./ipam/
//
// Each iteration of BenchmarkB12 is one pair: the affine arm (podnet's IPAM,
// one instance and one etcd client per simulated host) and the naive arm
// (one shared bitmap key), in alternating order, on the same embedded etcd.
// PODNET_B12_ALLOCS overrides the allocations per writer (default 2000 with
// 3 writers, 500 with 16). TMPDIR=/dev/shm puts etcd on tmpfs (rule 4).

// b12Arm is the outcome of one arm.
type b12Arm struct {
	allocs    int
	elapsed   time.Duration
	conflicts int64
	dups      int
	p99       time.Duration
}

func (r b12Arm) rate() float64 { return float64(r.allocs) / r.elapsed.Seconds() }

// conflictKV counts transactions whose conditions failed.
type conflictKV struct {
	kv
	conflicts *atomic.Int64
}

func (c conflictKV) Txn(ctx context.Context, cmps []store.Cmp, ops []store.Op) (bool, int64, error) {
	ok, rev, err := c.kv.Txn(ctx, cmps, ops)
	if err == nil && !ok {
		c.conflicts.Add(1)
	}
	return ok, rev, err
}

// b12Pool is a pool twice as big as the allocations need, so neither arm
// runs into exhaustion.
func b12Pool(total int) netip.Prefix {
	hb := bits.Len(uint(2 * total))
	return netip.PrefixFrom(netip.MustParseAddr("10.64.0.0"), 32-hb)
}

// runB12 runs writers concurrent writers of per allocations each through
// alloc (made per writer by newWriter) and checks the result against etcd.
func runB12(tb testing.TB, st *store.Store, pool netip.Prefix, writers, per int,
	newWriter func(i int) func(context.Context) (netip.Addr, error)) b12Arm {
	ctx := context.Background()
	allocs := make([]func(context.Context) (netip.Addr, error), writers)
	for i := range writers {
		allocs[i] = newWriter(i)
	}
	got := make([][]netip.Addr, writers)
	lat := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				t0 := time.Now()
				a, err := allocs[i](ctx)
				if err != nil {
					tb.Errorf("writer %d: %v", i, err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
				got[i] = append(got[i], a)
			}
		}()
	}
	wg.Wait()
	r := b12Arm{elapsed: time.Since(start)}
	seen := map[netip.Addr]bool{}
	var all []time.Duration
	for i := range writers {
		for _, a := range got[i] {
			if seen[a] {
				r.dups++
			}
			seen[a] = true
		}
		r.allocs += len(got[i])
		all = append(all, lat[i]...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		r.p99 = all[len(all)*99/100]
	}
	// Duplicates also show as a union smaller than what etcd holds.
	kvs, _, err := st.List(ctx, store.AddrsPrefix(pool))
	if err != nil {
		tb.Fatal(err)
	}
	if len(kvs) != len(seen) {
		tb.Errorf("etcd holds %d addresses, writers got %d distinct", len(kvs), len(seen))
		r.dups += max(0, len(kvs)-len(seen))
	}
	for _, kv := range kvs {
		if a, ok := addrFromKey(pool, kv.Key); !ok || !seen[a] {
			tb.Errorf("etcd holds %s, which no writer got", kv.Key)
		}
	}
	return r
}

func runAffine(tb testing.TB, e *storetest.Etcd, prefix string, writers, per int) b12Arm {
	pool := b12Pool(writers * per)
	var conflicts atomic.Int64
	st := e.Client(tb, prefix)
	r := runB12(tb, st, pool, writers, per, func(i int) func(context.Context) (netip.Addr, error) {
		m, err := New(Config{Host: fmt.Sprintf("host%d", i), Store: e.Client(tb, prefix), Logger: storetest.Logger(tb)})
		if err != nil {
			tb.Fatal(err)
		}
		m.st = conflictKV{kv: m.st, conflicts: &conflicts}
		id := requestPool(tb, m, pool.String(), "")
		return func(ctx context.Context) (netip.Addr, error) {
			r, err := m.RequestAddress(ctx, &ipam.RequestAddressRequest{PoolID: id})
			if err != nil {
				return netip.Addr{}, err
			}
			p, err := netip.ParsePrefix(r.Address)
			return p.Addr(), err
		}
	})
	r.conflicts = conflicts.Load()
	return r
}

func runNaive(tb testing.TB, e *storetest.Etcd, prefix string, writers, per int) b12Arm {
	pool := b12Pool(writers * per)
	st := e.Client(tb, prefix)
	if err := naiveInit(context.Background(), st, pool); err != nil {
		tb.Fatal(err)
	}
	var conflicts atomic.Int64
	r := runB12(tb, st, pool, writers, per, func(i int) func(context.Context) (netip.Addr, error) {
		n := &naiveAllocator{st: e.Client(tb, prefix), pool: pool, host: fmt.Sprintf("host%d", i), conflicts: &conflicts}
		return n.allocate
	})
	r.conflicts = conflicts.Load()
	return r
}

func BenchmarkB12(b *testing.B) {
	for _, writers := range []int{3, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			per := 2000
			if writers > 3 {
				per = 500
			}
			if v, err := strconv.Atoi(os.Getenv("PODNET_B12_ALLOCS")); err == nil && v > 0 {
				per = v
			}
			e := storetest.Start(b)
			var ratios, affineRates, naiveRates []float64
			var affineConf, naiveConf, dups int64
			var p99 time.Duration
			pair := 0
			for b.Loop() {
				var a, n b12Arm
				prefix := fmt.Sprintf("/b12/%d/", pair)
				if pair%2 == 0 { // ABAB…: alternate which arm runs first
					a = runAffine(b, e, prefix+"affine/", writers, per)
					n = runNaive(b, e, prefix+"naive/", writers, per)
				} else {
					n = runNaive(b, e, prefix+"naive/", writers, per)
					a = runAffine(b, e, prefix+"affine/", writers, per)
				}
				pair++
				ratios = append(ratios, a.rate()/n.rate())
				affineRates = append(affineRates, a.rate())
				naiveRates = append(naiveRates, n.rate())
				affineConf += a.conflicts
				naiveConf += n.conflicts
				dups += int64(a.dups + n.dups)
				p99 = max(p99, a.p99)
				b.Logf("pair %d: affine %.0f allocs/s (p99 %v, %d conflicts), naive %.0f allocs/s (p99 %v, %d conflicts), ratio %.2f",
					pair, a.rate(), a.p99, a.conflicts, n.rate(), n.p99, n.conflicts, a.rate()/n.rate())
			}
			if dups != 0 {
				b.Fatalf("%d duplicate addresses", dups)
			}
			total := float64(pair * writers * per)
			b.ReportMetric(median(ratios), "ratio")
			b.ReportMetric(slices.Min(ratios), "worst-ratio")
			b.ReportMetric(median(affineRates), "affine-allocs/s")
			b.ReportMetric(median(naiveRates), "naive-allocs/s")
			b.ReportMetric(float64(affineConf)/total, "affine-conflicts/alloc")
			b.ReportMetric(float64(naiveConf)/total, "naive-conflicts/alloc")
			b.ReportMetric(float64(p99.Microseconds())/1000, "affine-p99-ms")
			b.ReportMetric(0, "dups")
		})
	}
}

// BenchmarkB12cChurn is B12c: allocate and release 10k times (or
// PODNET_B12C_CYCLES) through one host; not a single address key may leak.
func BenchmarkB12cChurn(b *testing.B) {
	cycles := 10000
	if v, err := strconv.Atoi(os.Getenv("PODNET_B12C_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	c := newCluster(b)
	m := c.host("h1")
	const pool = "10.65.0.0/24"
	p := netip.MustParsePrefix(pool)
	requestPool(b, m, pool, "")
	// Warm up: the first allocation claims a block, which stays claimed
	// while the pool is in use (that key is affinity, not a leak).
	release(b, m, pool, alloc(b, m, pool))
	before := len(c.keys(""))
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		for range cycles {
			release(b, m, pool, alloc(b, m, pool))
		}
		elapsed += time.Since(start)
	}
	leak := len(c.keys("")) - before
	if n := len(c.keys(store.AddrsPrefix(p))); n != 0 || leak != 0 {
		b.Fatalf("leak: %d keys (%d address keys)", leak, n)
	}
	b.ReportMetric(float64(cycles*b.N)/elapsed.Seconds(), "cycles/s")
	b.ReportMetric(float64(leak), "leaked-keys")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
