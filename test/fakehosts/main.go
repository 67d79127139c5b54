// Command fakehosts stands in for many podnetd hosts in an etcd, for scale
// tests of real podnetds: each fake host has the records a podnetd and its
// IPAM write (a host record with an underlay address, a liveness key, a
// reference to the pool, blocks and one borrowed address), so that every
// real podnetd programs routes, neighbors and FDB entries for it. Nothing
// answers at the fake underlay addresses: use addresses no traffic goes to.
//
//	fakehosts -endpoints http://10.0.0.1:2379 -pool 100.64.0.0/12 -hosts 1000
//	          [-cacert CA -cert CERT -key KEY]
//
// With -containers M (and -services S), each fake host also has M
// running containers' records (containers.go). It prints "containers N
// selected K services S took D" once those are written and "ready HOSTS
// BLOCKS" once everything is, keeps the
// liveness keys on one lease while it runs, and on SIGINT or SIGTERM
// deletes what it wrote (revoking the lease) and prints "removed".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/podnet/podnet/store"
)

type options struct {
	endpoints string
	// cacert, cert and key are the etcd TLS files (the lab's etcd wants
	// a client certificate).
	cacert, cert, key string
	pool              netip.Prefix
	hosts             int
	blocks            int
	blockBits         int
	underlay          netip.Prefix
	name              string
	ttl               time.Duration
	// containers per host, services and containers per service
	// (containers.go).
	containers, services, perService int
}

func main() {
	var o options
	var pool, underlay string
	flag.StringVar(&o.endpoints, "endpoints", "", "etcd endpoints, comma-separated")
	flag.StringVar(&o.cacert, "etcd-cacert", "", "CA certificate (PEM) of the etcd servers")
	flag.StringVar(&o.cert, "etcd-cert", "", "client certificate (PEM) for etcd")
	flag.StringVar(&o.key, "etcd-key", "", "client key (PEM) for etcd")
	flag.StringVar(&pool, "pool", "", "the pool (subnet of a podnet vxlan network) the fake hosts claim blocks in")
	flag.IntVar(&o.hosts, "hosts", 100, "number of fake hosts")
	flag.IntVar(&o.blocks, "blocks", 4, "blocks per fake host")
	flag.IntVar(&o.blockBits, "block-bits", 26, "prefix length of the blocks")
	flag.StringVar(&underlay, "underlay", "10.199.0.0/16", "where the fake underlay addresses come from")
	flag.StringVar(&o.name, "name", "fake", "prefix of the fake host names")
	flag.DurationVar(&o.ttl, "ttl", 30*time.Second, "liveness lease TTL")
	flag.IntVar(&o.containers, "containers", 0, "fake containers per host (endpoint metadata with the name and selection indexes)")
	flag.IntVar(&o.services, "services", 0, "fake services, each selecting -per-service of the containers")
	flag.IntVar(&o.perService, "per-service", 10, "containers each fake service selects")
	flag.Parse()
	var err error
	if o.pool, err = netip.ParsePrefix(pool); err != nil || !o.pool.Addr().Is4() {
		fail(fmt.Errorf("-pool %q: want an IPv4 subnet", pool))
	}
	if o.underlay, err = netip.ParsePrefix(underlay); err != nil || !o.underlay.Addr().Is4() {
		fail(fmt.Errorf("-underlay %q: want an IPv4 prefix", underlay))
	}
	if o.endpoints == "" || o.hosts < 1 || o.blocks < 1 {
		fail(errors.New("want -endpoints, -hosts ≥ 1 and -blocks ≥ 1"))
	}
	if per := (1 << (32 - o.blockBits)) - 4; o.containers > per*o.blocks || o.services*o.perService > o.hosts*o.containers {
		fail(fmt.Errorf("-containers %d does not fit %d blocks of /%d, or -services × -per-service exceeds the containers", o.containers, o.blocks, o.blockBits))
	}
	if err := run(o); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fakehosts:", err)
	os.Exit(1)
}

func run(o options) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(store.Config{Endpoints: strings.Split(o.endpoints, ","), CACert: o.cacert, Cert: o.cert, Key: o.key, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var keys []string // what to delete at the end
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for len(keys) > 0 {
			n := min(100, len(keys))
			ops := make([]store.Op, 0, n)
			for _, k := range keys[:n] {
				ops = append(ops, store.Delete(k))
			}
			if _, _, err := st.Txn(dctx, nil, ops); err != nil {
				fmt.Fprintln(os.Stderr, "fakehosts: cleanup:", err)
				return
			}
			keys = keys[n:]
		}
		fmt.Println("removed")
	}()
	blocks, hostBlocks, err := claim(ctx, st, o, &keys)
	if err != nil {
		return err
	}
	if o.containers > 0 {
		start := time.Now()
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if _, _, err := containersOp(dctx, st, o, hostBlocks, true); err != nil {
				fmt.Fprintln(os.Stderr, "fakehosts: cleanup of the containers:", err)
			}
		}()
		n, sel, err := containersOp(ctx, st, o, hostBlocks, false)
		if err != nil {
			return fmt.Errorf("write the fake containers: %w", err)
		}
		fmt.Printf("containers %d selected %d services %d took %s\n", n, sel, o.services, time.Since(start).Round(time.Millisecond))
	}
	// The liveness keys last: a host appears with its blocks in place, as
	// a restarted podnetd does. One lease holds them all (a lease per
	// stand-in makes thousands of grants and renewals etcd must agree on,
	// which at 5000 hosts with a large data set starves it).
	recs := make([]store.HostAlive, o.hosts)
	for i := range recs {
		recs[i] = store.HostAlive{Name: fmt.Sprintf("%s%05d", o.name, i), Started: time.Now().UTC(), Version: "fakehosts",
			IPAMLayout: store.IPAMLayoutExceptions, MetaLayout: store.MetaLayoutSelected}
	}
	alive := make(chan struct{}, 1)
	done := make(chan struct{})
	defer func() { <-done }() // the lease revoked before the other keys go
	go func() { defer close(done); keepAlive(ctx, st, recs, o.ttl, alive) }()
	select {
	case <-alive:
	case <-ctx.Done():
		return nil
	}
	fmt.Printf("ready %d %d\n", o.hosts, blocks)
	<-ctx.Done()
	return nil
}

// keepAlive keeps the fake hosts' liveness keys on one lease of ttl until
// ctx ends (then revokes it), writing them again when the lease is lost,
// and says so on alive each time they are all written.
func keepAlive(ctx context.Context, st *store.Store, recs []store.HostAlive, ttl time.Duration, alive chan<- struct{}) {
	for ctx.Err() == nil {
		id, err := st.Grant(ctx, ttl)
		for i := 0; err == nil && i < len(recs); i += 100 {
			var ops []store.Op
			for _, rec := range recs[i:min(i+100, len(recs))] {
				ops = append(ops, store.PutLeased(store.AliveKey(rec.Name), rec, id))
			}
			_, _, err = st.Txn(ctx, nil, ops)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "fakehosts: liveness: %v; retrying\n", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case alive <- struct{}{}:
		default:
		}
		_ = st.KeepLease(ctx, id)
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = st.Revoke(rctx, id)
			cancel()
		}
	}
}

// claim writes every fake host's records but its liveness key, with a few
// writers at once: blocks are taken from the top of the pool downwards,
// skipping those already claimed (real hosts start at offsets spread over
// the pool).
func claim(ctx context.Context, st *store.Store, o options, keys *[]string) (int, [][]netip.Prefix, error) {
	now := time.Now().UTC()
	existing, _, err := st.List(ctx, store.BlocksPrefix(o.pool))
	if err != nil {
		return 0, nil, err
	}
	taken := map[string]bool{}
	for _, kv := range existing {
		taken[kv.Key] = true
	}
	type write struct {
		key    string
		v      any
		create bool
	}
	var writes []write
	next := lastBlock(o.pool, o.blockBits)
	first := make([]netip.Prefix, o.hosts)
	hostBlocks := make([][]netip.Prefix, o.hosts)
	total := 0
	for i := range o.hosts {
		name := fmt.Sprintf("%s%05d", o.name, i)
		writes = append(writes,
			write{store.HostKey(name), store.Host{Name: name, Underlay: nthAddr(o.underlay, i+10), Since: now}, false},
			write{store.PoolRefKey(o.pool, name), store.PoolRef{Host: name, Since: now}, false})
		for claimed := 0; claimed < o.blocks; {
			if !next.IsValid() || !o.pool.Contains(next.Addr()) {
				return 0, nil, fmt.Errorf("pool %s has no free block left for %s", o.pool, name)
			}
			b := next
			next = prevBlock(next)
			key := store.BlockKey(o.pool, b)
			if taken[key] {
				continue
			}
			writes = append(writes, write{key, store.Block{Host: name, Claimed: now}, true})
			hostBlocks[i] = append(hostBlocks[i], b)
			if claimed == 0 {
				first[i] = b
			}
			claimed++
			total++
		}
	}
	// One borrowed address each: .5 of the next fake host's first block.
	for i := range o.hosts {
		name := fmt.Sprintf("%s%05d", o.name, i)
		writes = append(writes, write{store.ExcKey(o.pool, nthAddr(first[(i+1)%o.hosts], 5)), store.Exception{Host: name}, false})
	}
	work := make(chan write)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 16 {
		wg.Go(func() {
			for w := range work {
				var err error
				if w.create {
					_, err = st.Create(ctx, w.key, w.v)
				} else {
					err = st.Put(ctx, w.key, w.v)
				}
				if err != nil {
					errs <- fmt.Errorf("write %s: %w", w.key, err)
					return
				}
				mu.Lock()
				*keys = append(*keys, w.key) // only what was written here is deleted at the end
				mu.Unlock()
			}
		})
	}
	var werr error
feed:
	for _, w := range writes {
		select {
		case work <- w:
		case werr = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if werr == nil && len(errs) > 0 {
		werr = <-errs
	}
	return total, hostBlocks, werr
}

func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// lastBlock is the highest block of length bits in p.
func lastBlock(p netip.Prefix, bits int) netip.Prefix {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(1)<<(32-p.Bits()) - uint32(1)<<(32-bits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
}

// prevBlock is the block just below b (invalid below 0.0.0.0).
func prevBlock(b netip.Prefix) netip.Prefix {
	a := b.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	step := uint32(1) << (32 - b.Bits())
	if v < step {
		return netip.Prefix{}
	}
	v -= step
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), b.Bits())
}
