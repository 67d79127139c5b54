package store_test

import (
	"net/netip"
	"testing"

	"github.com/podnet/podnet/store"
)

func TestPoolOfKey(t *testing.T) {
	for key, want := range map[string]string{
		store.PoolKey(netip.MustParsePrefix("10.1.0.0/16")): "10.1.0.0/16",
		store.PoolKey(netip.MustParsePrefix("fd00::/64")):   "fd00::/64",
		"pools/10.1.2.3-16": "10.1.0.0/16", // written by hand: masked
	} {
		if p, err := store.PoolOfKey(key); err != nil || p.String() != want {
			t.Errorf("PoolOfKey(%q) = %v, %v; want %s", key, p, err, want)
		}
	}
	for _, key := range []string{"pools/", "pools/x", "pools/10.1.0.0-99", "hosts/10.1.0.0-16"} {
		if p, err := store.PoolOfKey(key); err == nil {
			t.Errorf("PoolOfKey(%q) = %v, want an error", key, p)
		}
	}
}

func TestSplitHostKey(t *testing.T) {
	if h, id, ok := store.SplitHostKey("epmeta/h1/abc", "epmeta/"); !ok || h != "h1" || id != "abc" {
		t.Errorf("SplitHostKey = %q %q %v", h, id, ok)
	}
	for _, k := range []string{"epmeta/h1", "epmeta//abc", "epmeta/h1/", "epmeta/h1/a/b", "endpoints/h1/abc"} {
		if _, _, ok := store.SplitHostKey(k, "epmeta/"); ok {
			t.Errorf("SplitHostKey(%q) accepted", k)
		}
	}
}

func TestAliveHost(t *testing.T) {
	if h, ok := store.AliveHost(store.AliveKey("h1")); !ok || h != "h1" {
		t.Errorf("AliveHost = %q %v", h, ok)
	}
	for _, k := range []string{"alive/", "alive/h1/x", "hosts/h1"} {
		if _, ok := store.AliveHost(k); ok {
			t.Errorf("AliveHost(%q) accepted", k)
		}
	}
}
