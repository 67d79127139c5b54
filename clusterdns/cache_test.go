package clusterdns

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// TestDNSServesSavedRecordsWithEtcdDown: a DNS that saw the records saves
// them (root only); a new one whose etcd does not answer serves them from
// disk, forwards other names, and never answers what was not answerable.
func TestDNSServesSavedRecordsWithEtcdDown(t *testing.T) {
	st := storetest.New(t)
	twoHosts(t, st)
	up := fakeUpstream(t)
	file := filepath.Join(t.TempDir(), "state", "dns-records.json")
	withCache := func(c *Config) { c.CacheFile = file }

	_, srv := startDNS(t, st, []string{up}, withCache)
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.2")
	testutil.Until(t, 10*time.Second, "the records on disk", func() bool {
		f, err := readCache(file)
		return err == nil && len(f.Endpoints) == 4
	})
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}

	// A restart while etcd is down: the new server's store points at a
	// port nobody serves. (The first server keeps running; with nothing
	// changing in etcd it writes nothing more.)
	dead, err := store.Open(store.Config{Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))},
		Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	_, srv = startDNS(t, dead, []string{up}, withCache)
	waitAnswer(t, srv, "web.", dns.TypeA, dns.RcodeSuccess, "10.0.0.1", "10.0.1.2")
	waitAnswer(t, srv, "api-alias.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::2")
	rev, _ := dns.ReverseAddr("10.0.1.2")
	if m := query(t, srv, "udp", rev, dns.TypePTR, false); len(m.Answer) != 1 ||
		m.Answer[0].(*dns.PTR).Ptr != "web." {
		t.Fatalf("PTR from disk: %v", m.Answer)
	}
	waitAnswer(t, srv, "example.com.", dns.TypeA, dns.RcodeSuccess, "192.0.2.1") // forwarded
	waitAnswer(t, srv, "slow.", dns.TypeA, dns.RcodeNameError)                   // not ready: never saved
}

// TestDNSCacheIsBoundedAndChecked: a file with garbage entries loads only
// the valid ones; a corrupt or foreign file is ignored; export never
// writes more than the bound.
func TestDNSCacheIsBoundedAndChecked(t *testing.T) {
	r := newRecords(storetest.Logger(t))
	n := r.restore(cacheFile{Version: cacheVersion, Endpoints: []cachedEndpoint{
		{Key: "epmeta/h1/a", Host: "h1", Names: []string{"Good"}, V4: netip.MustParseAddr("10.0.0.1")},
		{Key: "epmeta/h1/b", Host: "h1", Names: []string{"no-address"}},
		{Key: "epmeta/h1/c", Host: "h1", Names: []string{""}, V4: netip.MustParseAddr("10.0.0.3")},
		{Key: "", Host: "h1", Names: []string{"nokey"}, V4: netip.MustParseAddr("10.0.0.4")},
		{Key: "epmeta/h1/e", Host: "h1", Names: []string{"v6in4"}, V6: netip.MustParseAddr("::ffff:10.0.0.5")},
	}})
	if n != 1 {
		t.Fatalf("restored %d endpoints, want only the valid one", n)
	}
	if v4, _ := r.lookup("good"); len(v4) != 1 {
		t.Fatalf("lookup after restore: %v", v4)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"corrupt": "{not json", "foreign": `{"version":99,"endpoints":[]}`} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readCache(path); err == nil {
			t.Fatalf("%s file accepted", name)
		}
	}
	big := newRecords(storetest.Logger(t))
	big.alive["h1"] = 0
	for i := range maxCachedEndpoints + 10 {
		big.putLocked(fmt.Sprintf("epmeta/h1/%06d", i), &entry{host: "h1", names: []string{fmt.Sprintf("c%d", i)},
			v4: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), ready: true})
	}
	d := &Server{log: storetest.Logger(t), recs: big, cache: &diskCache{path: filepath.Join(dir, "big.json")}}
	d.cache.aliveLoaded.Store(true)
	d.saveCache()
	b, err := os.ReadFile(d.cache.path)
	if err != nil {
		t.Fatal(err)
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil || len(f.Endpoints) != maxCachedEndpoints {
		t.Fatalf("saved %d endpoints (%v), want the bound %d", len(f.Endpoints), err, maxCachedEndpoints)
	}
	if !strings.HasSuffix(f.Endpoints[len(f.Endpoints)-1].Key, fmt.Sprintf("%06d", maxCachedEndpoints-1)) {
		t.Fatalf("kept %s last, want the first keys in order", f.Endpoints[len(f.Endpoints)-1].Key)
	}
}
