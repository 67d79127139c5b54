package storetest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Cluster is a real etcd cluster of several members in this process, for
// tests of leader changes and member restarts. Members run with short
// raft timings (50 ms heartbeat, 500 ms election) so elections take about
// a second.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	members []*member
}

type member struct {
	cfg *embed.Config
	e   *embed.Etcd // nil while stopped
	// Clients reach the member through px, so Stop can cut their
	// connections the way a killed process does (a reset, not etcd's
	// goodbye to requests in flight).
	px *proxy
}

// StartCluster starts an n-member cluster that lives until the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	var initial []string
	for i := range n {
		cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
		pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = t.TempDir()
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfg.TickMs, cfg.ElectionMs = 50, 500
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
		initial = append(initial, cfg.Name+"="+pu.String())
		c.members = append(c.members, &member{cfg: cfg,
			px: newProxy(t, cu.Host)})
	}
	for _, m := range c.members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
		m.cfg.InitialClusterToken = "storetest-" + c.members[0].cfg.Dir
	}
	t.Cleanup(func() {
		for i := range c.members {
			c.Stop(i)
		}
	})
	c.Restart(seq(n)...)
	return c
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// Endpoints returns the client URLs of the given members (all if none).
func (c *Cluster) Endpoints(members ...int) []string {
	if len(members) == 0 {
		members = seq(len(c.members))
	}
	var out []string
	for _, i := range members {
		out = append(out, "http://"+c.members[i].px.addr)
	}
	return out
}

// Client opens a store client that talks only to the given members (all
// if none).
func (c *Cluster) Client(t testing.TB, members ...int) *store.Store {
	t.Helper()
	s, err := store.Open(store.Config{Endpoints: c.Endpoints(members...), Logger: Logger(t)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Stop stops member i abruptly, as kill -9 would for the cluster: no
// leadership transfer, no goodbye to its peers.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	m := c.members[i]
	e := m.e
	m.e = nil
	c.mu.Unlock()
	if e == nil {
		return
	}
	m.px.kill()
	e.Server.HardStop()
	e.Close()
}

// Restart starts the given members again from their data (concurrently:
// a member alone may have no quorum) and waits until they serve.
func (c *Cluster) Restart(members ...int) {
	c.t.Helper()
	errs := make(chan error, len(members))
	for _, i := range members {
		go func() {
			m := c.members[i]
			e, err := embed.StartEtcd(m.cfg)
			if err != nil {
				errs <- fmt.Errorf("start member %s: %w", m.cfg.Name, err)
				return
			}
			select {
			case <-e.Server.ReadyNotify():
			case err := <-e.Err():
				e.Close()
				errs <- fmt.Errorf("member %s: %w", m.cfg.Name, err)
				return
			case <-time.After(60 * time.Second):
				e.Close()
				errs <- fmt.Errorf("member %s not ready within 60s", m.cfg.Name)
				return
			}
			m.px.start()
			c.mu.Lock()
			m.e = e
			c.mu.Unlock()
			errs <- nil
		}()
	}
	for range members {
		if err := <-errs; err != nil {
			c.t.Fatal(err)
		}
	}
}

// Leader returns the index of the member that leads now (-1: none known).
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m.e != nil && m.e.Server.Leader() == m.e.Server.MemberID() {
			return i
		}
	}
	return -1
}

// Compact compacts the history of the etcd at endpoints up to its current
// revision, as etcd's auto-compaction eventually does: watches from older
// revisions then fail with "required revision has been compacted".
func Compact(t testing.TB, endpoints []string) {
	t.Helper()
	cli, ctx := raw(t, endpoints)
	resp, err := cli.Get(ctx, "compact-probe")
	if err != nil {
		t.Fatalf("read revision to compact: %v", err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact to revision %d: %v", resp.Header.Revision, err)
	}
}

// Leases lists the leases the etcd at endpoints holds.
func Leases(t testing.TB, endpoints []string) []int64 {
	t.Helper()
	cli, ctx := raw(t, endpoints)
	resp, err := cli.Leases(ctx)
	if err != nil {
		t.Fatalf("list leases: %v", err)
	}
	out := make([]int64, 0, len(resp.Leases))
	for _, l := range resp.Leases {
		out = append(out, int64(l.ID))
	}
	return out
}

// raw is a plain etcd client (closed when the test ends) and a context
// for one administrative call: what the store does not offer podnet.
func raw(t testing.TB, endpoints []string) (*clientv3.Client, context.Context) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return cli, ctx
}
