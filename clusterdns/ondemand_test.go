package clusterdns

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// putMeta writes an endpoint's metadata with its name index, as a
// podnetd keeping the index does (nil deletes it).
func putMeta(t *testing.T, st *store.Store, host, ep string, m *store.EndpointMeta) {
	t.Helper()
	if m != nil {
		m.Endpoint = ep
	}
	if _, err := store.WriteEndpointMeta(context.Background(), st, host, ep, nil, m, true); err != nil {
		t.Fatal(err)
	}
}

// twoIndexedHosts writes the records of twoHosts the way podnetds with
// the name index do.
func twoIndexedHosts(t *testing.T, st *store.Store) {
	for _, h := range []string{"h1", "h2"} {
		storetest.Put(t, st, store.AliveKey(h), store.HostAlive{Name: h, MetaLayout: store.MetaLayoutNames})
	}
	putMeta(t, st, "h1", "e1", &store.EndpointMeta{Name: "web", IPv4: netip.MustParseAddr("10.0.0.1"), Ready: true})
	putMeta(t, st, "h1", "e4", &store.EndpointMeta{Name: "slow", IPv4: netip.MustParseAddr("10.0.0.4"), Ready: false})
	putMeta(t, st, "h2", "e2", &store.EndpointMeta{Name: "api", Aliases: []string{"API-Alias"}, IPv4: netip.MustParseAddr("10.0.1.1"),
		IPv6: netip.MustParseAddr("fd00::2"), Ready: true})
	putMeta(t, st, "h2", "e3", &store.EndpointMeta{Name: "web", IPv4: netip.MustParseAddr("10.0.1.2"), Ready: true})
	putMeta(t, st, "h2", "e5", &store.EndpointMeta{Name: "v6only", IPv6: netip.MustParseAddr("fd00::5"), Ready: true})
}

func followsAny(h *feed.Hub, prefix string) bool {
	return slices.ContainsFunc(h.Prefixes(), func(p string) bool { return strings.HasPrefix(p, prefix) })
}

// TestDNSNamesOnDemand: with every host keeping the name index, the DNS
// follows no endpoint metadata at all, only alive/ and the names it was
// asked for; answers follow renames, readiness and removals.
func TestDNSNamesOnDemand(t *testing.T) {
	st := storetest.New(t)
	twoIndexedHosts(t, st)
	hub := feeds(t, st)
	d, srv := startDNSWith(t, Config{Feeds: hub, Upstreams: []string{fakeUpstream(t)}})

	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.2")
	waitAnswer(t, srv, "api-alias.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::2")
	waitAnswer(t, srv, "v6only.", dns.TypeA, dns.RcodeSuccess) // known, no A: NOERROR
	waitAnswer(t, srv, "slow.", dns.TypeA, dns.RcodeNameError) // not ready
	rev, _ := dns.ReverseAddr("10.0.1.2")
	if m := query(t, srv, "udp", rev, dns.TypePTR, false); len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != "web." {
		t.Fatalf("PTR: %v", m.Answer)
	}
	if followsAny(hub, store.EndpointMetaPrefix("")) {
		t.Fatalf("the DNS follows endpoint metadata: %v", hub.Prefixes())
	}
	for _, p := range []string{store.DNSNamePrefix("web"), store.DNSNamePrefix("api-alias"), store.DNSAddrPrefix(netip.MustParseAddr("10.0.1.2"))} {
		if !slices.Contains(hub.Prefixes(), p) {
			t.Fatalf("%s not followed after a query: %v", p, hub.Prefixes())
		}
	}
	if followsAny(hub, store.DNSNamePrefix("api")) && !slices.Contains(hub.Prefixes(), store.DNSNamePrefix("api")) {
		t.Fatalf("a name nobody asked for is followed: %v", hub.Prefixes())
	}

	// Removed, renamed, not ready: the cached answers change as the owner
	// writes (within the deadline; the figures are in docs/scale.md).
	putMeta(t, st, "h2", "e3", nil)
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1")
	putMeta(t, st, "h1", "e1", &store.EndpointMeta{Name: "shop", IPv4: netip.MustParseAddr("10.0.0.1"), Ready: true})
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeNameError)
	waitAnswer(t, srv, "shop.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1")
	putMeta(t, st, "h2", "e2", &store.EndpointMeta{Name: "api", Aliases: []string{"API-Alias"}, IPv4: netip.MustParseAddr("10.0.1.1"), Ready: false})
	waitAnswer(t, srv, "api-alias.", dns.TypeA, dns.RcodeNameError)
	if m := query(t, srv, "udp", rev, dns.TypePTR, false); m.Rcode != dns.RcodeNameError {
		t.Fatalf("PTR of a removed container: %v", m)
	}
	// A name that appears after it was asked for (and answered unknown).
	putMeta(t, st, "h2", "e6", &store.EndpointMeta{Name: "late", IPv4: netip.MustParseAddr("10.0.1.6"), Ready: true})
	waitAnswer(t, srv, "late.", dns.TypeA, dns.RcodeSuccess, "10.0.1.6")
	if got := d.Lookup("LATE."); len(got) != 1 {
		t.Fatalf("Lookup(LATE.) = %v", got)
	}
	// A dead host's names stop resolving (its liveness key goes).
	storetest.Delete(t, st, store.AliveKey("h1"))
	waitAnswer(t, srv, "shop.", dns.TypeA, dns.RcodeNameError)
}

// TestDNSRollingUpgrade: a host whose podnetd keeps no name index is
// followed whole (epmeta/<host>/) while it is alive and without it; once
// its podnetd indexes its names and says so, it is read on demand like
// the others.
func TestDNSRollingUpgrade(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.AliveKey("old"), store.HostAlive{Name: "old"})
	storetest.Put(t, st, store.EndpointMetaKey("old", "o1"), store.EndpointMeta{Endpoint: "o1", Name: "web", IPv4: netip.MustParseAddr("10.0.0.1"), Ready: true})
	storetest.Put(t, st, store.AliveKey("new"), store.HostAlive{Name: "new", MetaLayout: store.MetaLayoutNames})
	putMeta(t, st, "new", "n1", &store.EndpointMeta{Name: "web", IPv4: netip.MustParseAddr("10.0.1.1"), Ready: true})
	hub := feeds(t, st)
	_, srv := startDNSWith(t, Config{Feeds: hub, Upstreams: []string{}})

	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.1")
	if p := hub.Prefixes(); !slices.Contains(p, store.EndpointMetaPrefix("old")) || followsAny(hub, store.EndpointMetaPrefix("new")) {
		t.Fatalf("followed %v: want epmeta/old/ only of the metadata", p)
	}
	// The old host's containers change as before.
	storetest.Put(t, st, store.EndpointMetaKey("old", "o2"), store.EndpointMeta{Endpoint: "o2", Name: "db", IPv4: netip.MustParseAddr("10.0.0.2"), Ready: true})
	waitAnswer(t, srv, "db.", dns.TypeA, dns.RcodeSuccess, "10.0.0.2")

	// The old host is upgraded: its new podnetd indexes what the old one
	// wrote, then says so in its liveness record.
	n, err := store.IndexHostNames(context.Background(), st, "old")
	if err != nil || n != 4 { // web and db: a name and an address key each
		t.Fatalf("IndexHostNames = %d, %v; want 4 keys", n, err)
	}
	if n, err := store.IndexHostNames(context.Background(), st, "old"); err != nil || n != 4 {
		t.Fatalf("IndexHostNames again = %d, %v; want the same 4 keys rewritten", n, err)
	}
	storetest.Put(t, st, store.AliveKey("old"), store.HostAlive{Name: "old", MetaLayout: store.MetaLayoutNames})
	testutil.Until(t, 10*time.Second, "epmeta/old/ no longer followed", func() bool { return !followsAny(hub, store.EndpointMetaPrefix("")) })
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.1")
	waitAnswer(t, srv, "db.", dns.TypeA, dns.RcodeSuccess, "10.0.0.2")
	putMeta(t, st, "old", "o2", nil)
	waitAnswer(t, srv, "db.", dns.TypeA, dns.RcodeNameError)
}

// TestDNSOnDemandSavesWhatItAnswered: the file holds the names the DNS
// was asked for (and answered); a DNS restarted while etcd is down
// answers them from it, and forwards the rest.
func TestDNSOnDemandSavesWhatItAnswered(t *testing.T) {
	st := storetest.New(t)
	twoIndexedHosts(t, st)
	up := fakeUpstream(t)
	file := filepath.Join(t.TempDir(), "dns-records.json")
	withCache := func(c *Config) { c.CacheFile = file }
	_, srv := startDNS(t, st, []string{up}, withCache)
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.2")
	waitAnswer(t, srv, "api-alias.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::2")
	testutil.Until(t, 10*time.Second, "the answered names on disk", func() bool {
		f, err := readCache(file)
		if err != nil {
			return false
		}
		var names []string
		for _, e := range f.Endpoints {
			names = append(names, e.Names...)
		}
		slices.Sort(names)
		return slices.Equal(names, []string{"api-alias", "web", "web"})
	})

	dead, err := store.Open(store.Config{Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))},
		Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	_, srv = startDNS(t, dead, []string{up}, withCache)
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.2")
	waitAnswer(t, srv, "api-alias.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::2")
	waitAnswer(t, srv, "example.com.", dns.TypeA, dns.RcodeSuccess, "192.0.2.1")
	waitAnswer(t, srv, "v6only.", dns.TypeAAAA, dns.RcodeNameError) // never asked: not saved
}
