package store_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

func indexKeys(t *testing.T, st *store.Store) []string {
	t.Helper()
	return append(storetest.Keys(t, st, store.DNSNamesPrefix), storetest.Keys(t, st, store.DNSAddrsPrefix)...)
}

// TestWriteEndpointMetaKeepsTheNameIndex: the name index follows the
// metadata in the same transactions: names and aliases in index form,
// nothing for an unready endpoint, old names gone on a rename, nothing
// written for a change of labels alone, everything gone with the record.
func TestWriteEndpointMetaKeepsTheNameIndex(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	write := func(cmps []store.Cmp, m *store.EndpointMeta) bool {
		t.Helper()
		ok, err := store.WriteEndpointMeta(ctx, st, "h1", "e1", cmps, m, true)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	m := store.EndpointMeta{Endpoint: "e1", Name: "Web", Aliases: []string{"www", "dotted.name", "a/b"},
		IPv4: netip.MustParseAddr("10.0.0.1"), IPv6: netip.MustParseAddr("fd00::1"), Ready: true}
	if !write(nil, &m) {
		t.Fatal("write without conditions did not hold")
	}
	want := []string{"dns/names/web/h1/e1", "dns/names/www/h1/e1", "dns/addrs/0a000001/h1/e1", "dns/addrs/fd000000000000000000000000000001/h1/e1"}
	if got := indexKeys(t, st); !slices.Equal(got, want) {
		t.Fatalf("index keys %v, want %v", got, want)
	}
	var v store.DNSName
	if _, err := st.Get(ctx, "dns/names/www/h1/e1", &v); err != nil || v.Name != "Web" || v.IPv4 != m.IPv4 || v.IPv6 != m.IPv6 {
		t.Fatalf("index value %+v, %v", v, err)
	}
	// Labels alone: no index write.
	rev, _ := st.Get(ctx, "dns/names/web/h1/e1", nil)
	m.Labels = map[string]string{"app": "x"}
	write(nil, &m)
	if rev2, _ := st.Get(ctx, "dns/names/web/h1/e1", nil); rev2 != rev {
		t.Fatalf("index key rewritten for a change of labels (rev %d → %d)", rev, rev2)
	}
	// A failed condition writes nothing.
	m.Name = "shop"
	if write([]store.Cmp{store.Present("endpoints/h1/e1")}, &m) {
		t.Fatal("write held although its condition did not")
	}
	if got := indexKeys(t, st); !slices.Equal(got, want) {
		t.Fatalf("index keys %v after a failed write", got)
	}
	write(nil, &m)
	if got := storetest.Keys(t, st, store.DNSNamesPrefix); !slices.Equal(got, []string{"dns/names/shop/h1/e1", "dns/names/www/h1/e1"}) {
		t.Fatalf("after the rename: %v", got)
	}
	m.Ready = false
	write(nil, &m)
	if got := indexKeys(t, st); len(got) != 0 {
		t.Fatalf("an unready endpoint is indexed: %v", got)
	}
	m.Ready = true
	write(nil, &m)
	write(nil, nil)
	if got := append(indexKeys(t, st), storetest.Keys(t, st, store.EndpointMetaPrefix(""))...); len(got) != 0 {
		t.Fatalf("left after the delete: %v", got)
	}
	// A removed host's index goes with DeleteHostNames.
	write(nil, &m)
	if err := store.DeleteHostNames(ctx, st, "h1"); err != nil {
		t.Fatal(err)
	}
	if got := indexKeys(t, st); len(got) != 0 {
		t.Fatalf("left after DeleteHostNames: %v", got)
	}
}
