package ipam

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// cluster is one embedded etcd shared by several simulated hosts, each
// with its own client connection, as separate podnetd processes would.
type cluster struct {
	t    testing.TB
	etcd *storetest.Etcd
	raw  *store.Store // for assertions and for planting records
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	e := storetest.Start(t)
	return &cluster{t: t, etcd: e, raw: e.Client(t, "")}
}

// host starts an IPAM for host name on its own store client.
func (c *cluster) host(name string, tweak ...func(*Config)) *IPAM {
	c.t.Helper()
	cfg := Config{Host: name, Store: c.etcd.Client(c.t, ""), Logger: storetest.Logger(c.t)}
	for _, f := range tweak {
		f(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		c.t.Fatalf("new IPAM for %s: %v", name, err)
	}
	return m
}

// keys lists every key under prefix.
func (c *cluster) keys(prefix string) []string {
	c.t.Helper()
	kvs, _, err := c.raw.List(context.Background(), prefix)
	if err != nil {
		c.t.Fatal(err)
	}
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

func (c *cluster) addr(pool, ip string) (store.Address, bool) {
	c.t.Helper()
	var a store.Address
	_, err := c.raw.Get(context.Background(), store.AddrKey(netip.MustParsePrefix(pool), netip.MustParseAddr(ip)), &a)
	if errors.Is(err, store.ErrNotFound) {
		return a, false
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return a, true
}

func (c *cluster) pool(pool string) (store.Pool, bool) {
	c.t.Helper()
	var p store.Pool
	_, err := c.raw.Get(context.Background(), store.PoolKey(netip.MustParsePrefix(pool)), &p)
	if errors.Is(err, store.ErrNotFound) {
		return p, false
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return p, true
}

func requestPool(t testing.TB, m *IPAM, subnet, ipRange string) string {
	t.Helper()
	r, err := m.RequestPool(context.Background(), &ipam.RequestPoolRequest{
		AddressSpace: netspec.LocalAddressSpace, Pool: subnet, SubPool: ipRange, V6: strings.Contains(subnet, ":")})
	if err != nil {
		t.Fatalf("%s: RequestPool %q %q: %v", m.host, subnet, ipRange, err)
	}
	if r.PoolID != r.Pool {
		t.Fatalf("PoolID %q != Pool %q", r.PoolID, r.Pool)
	}
	return r.PoolID
}

func releasePool(t testing.TB, m *IPAM, pool string) {
	t.Helper()
	_ = m.st.(*store.Store).Delete(context.Background(), testNetworkKey(m, pool))
	if err := m.ReleasePool(context.Background(), &ipam.ReleasePoolRequest{PoolID: pool}); err != nil {
		t.Fatalf("%s: ReleasePool %s: %v", m.host, pool, err)
	}
}

// request asks for an address (ip "" = dynamic) and returns the CIDR. An
// explicit container address (--ip) comes once the host's network exists:
// its record is written first (without one, the request is an aux
// address of a network being created; see requestAux).
func request(m *IPAM, pool, ip string, opts map[string]string) (string, error) {
	if ip != "" && opts[optRequestAddressType] == "" {
		if st, ok := m.st.(*store.Store); ok {
			n := store.Network{ID: "net-" + pool, Host: m.host, IPv4: []store.Subnet{{Pool: netip.MustParsePrefix(pool)}}}
			if strings.Contains(pool, ":") {
				n.IPv4, n.IPv6 = nil, n.IPv4
			}
			if err := st.Put(context.Background(), testNetworkKey(m, pool), n); err != nil {
				return "", err
			}
		}
	}
	r, err := m.RequestAddress(context.Background(), &ipam.RequestAddressRequest{PoolID: pool, Address: ip, Options: opts})
	if err != nil {
		return "", err
	}
	return r.Address, nil
}

func testNetworkKey(m *IPAM, pool string) string {
	return store.NetworkKey(m.host, "net-"+strings.ReplaceAll(pool, "/", "-"))
}

func alloc(t testing.TB, m *IPAM, pool string) netip.Addr {
	t.Helper()
	cidr, err := request(m, pool, "", nil)
	if err != nil {
		t.Fatalf("%s: allocate in %s: %v", m.host, pool, err)
	}
	p := netip.MustParsePrefix(cidr)
	if p.Bits() != netip.MustParsePrefix(pool).Bits() {
		t.Fatalf("address %s does not carry the pool's mask (%s)", cidr, pool)
	}
	return p.Addr()
}

func gateway(m *IPAM, pool, ip string) (string, error) {
	return request(m, pool, ip, map[string]string{optRequestAddressType: requestTypeGateway})
}

func release(t testing.TB, m *IPAM, pool string, a netip.Addr) {
	t.Helper()
	if err := m.ReleaseAddress(context.Background(), &ipam.ReleaseAddressRequest{PoolID: pool, Address: a.String()}); err != nil {
		t.Fatalf("%s: release %s: %v", m.host, a, err)
	}
}

// wantErr fails unless err is non-nil and its text holds every part.
func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

// countingKV counts etcd round trips.
type countingKV struct {
	kv
	calls atomic.Int64
}

func (c *countingKV) Get(ctx context.Context, key string, v any) (int64, error) {
	c.calls.Add(1)
	return c.kv.Get(ctx, key, v)
}

func (c *countingKV) Txn(ctx context.Context, cmps []store.Cmp, ops []store.Op) (bool, int64, error) {
	c.calls.Add(1)
	return c.kv.Txn(ctx, cmps, ops)
}

func (c *countingKV) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	c.calls.Add(1)
	return c.kv.List(ctx, prefix)
}

func (c *countingKV) ListRange(ctx context.Context, from, to string) ([]store.KV, error) {
	c.calls.Add(1)
	return c.kv.ListRange(ctx, from, to)
}

func (c *countingKV) Count(ctx context.Context, prefix string) (int64, error) {
	c.calls.Add(1)
	return c.kv.Count(ctx, prefix)
}
