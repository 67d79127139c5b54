package dataplane

import (
	"context"
	"net/netip"
	"slices"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func hosts4Of(f *fakeNFT) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, el := range f.elems {
		if el.set == setHosts4 {
			out = append(out, el.text)
		}
	}
	slices.Sort(out)
	return out
}

// TestSetPeersIncremental: once the table is loaded, a change of the
// peers touches only the hosts4 elements that differ (no table sync), and
// a refused update falls back to a sync that still ends with the peers.
func TestSetPeersIncremental(t *testing.T) {
	ctx := context.Background()
	e := newFakeEngine(t)
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPeers(ctx, addrs("10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.1", "fd00::1")); err != nil {
		t.Fatal(err)
	}
	syncs := e.nft.tables
	if err := e.SetPeers(ctx, addrs("10.0.0.2", "10.0.0.4", "10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	if got, want := hosts4Of(e.nft), []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}; !slices.Equal(got, want) {
		t.Fatalf("hosts4 = %v, want %v", got, want)
	}
	if e.nft.tables != syncs {
		t.Errorf("a change of peers synced the whole table (%d syncs, want %d)", e.nft.tables, syncs)
	}
	updates := e.nft.updates
	if err := e.SetPeers(ctx, addrs("10.0.0.4", "10.0.0.3", "10.0.0.2")); err != nil || e.nft.updates != updates {
		t.Errorf("the same peers again: err %v, %d updates (want none)", err, e.nft.updates-updates)
	}
	e.nft.failUpdate = true
	if err := e.SetPeers(ctx, addrs("10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	var synced []string
	for _, s := range e.nft.lastRuleset.sets {
		if s.name == setHosts4 {
			for _, el := range s.elems {
				synced = append(synced, el.text)
			}
		}
	}
	if !slices.Equal(synced, []string{"10.0.0.5"}) || e.nft.tables == syncs {
		t.Errorf("refused update: hosts4 = %v after %d syncs, want [10.0.0.5] from a table sync", synced, e.nft.tables-syncs)
	}
}

func TestDiffPeers(t *testing.T) {
	del, add := diffPeers(addrs("10.0.0.1", "10.0.0.2", "10.0.0.5"), addrs("10.0.0.2", "10.0.0.3", "10.0.0.6"))
	text := func(els []element) []string {
		var out []string
		for _, el := range els {
			out = append(out, el.text)
		}
		return out
	}
	if got := text(del); !slices.Equal(got, []string{"10.0.0.1", "10.0.0.5"}) {
		t.Errorf("del = %v", got)
	}
	if got := text(add); !slices.Equal(got, []string{"10.0.0.3", "10.0.0.6"}) {
		t.Errorf("add = %v", got)
	}
}
