package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// The first podnetd records the cluster's encryption; later ones agree or
// are refused naming both modes and what to do; podnetctl encryption set
// changes it, after which the old mode is refused.
func TestEnsureEncryption(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	if _, err := s.GetEncryption(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("before any podnetd: %v, want ErrNotFound", err)
	}
	rec, err := s.EnsureEncryption(ctx, store.EncryptionNone, "h1")
	if err != nil || rec.Mode != store.EncryptionNone || rec.Host != "h1" {
		t.Fatalf("first: %+v %v", rec, err)
	}
	if rec, err := s.EnsureEncryption(ctx, store.EncryptionNone, "h2"); err != nil || rec.Host != "h1" {
		t.Fatalf("agreeing: %+v %v", rec, err)
	}
	_, err = s.EnsureEncryption(ctx, store.EncryptionWireGuard, "h3")
	if !errors.Is(err, store.ErrEncryptionMismatch) || !strings.Contains(err.Error(), "--encryption wireguard, but the cluster's encryption is none") ||
		!strings.Contains(err.Error(), "podnetctl encryption set wireguard") {
		t.Fatalf("disagreeing: %v", err)
	}
	if _, err := s.EnsureEncryption(ctx, "ipsec", "h3"); err == nil || errors.Is(err, store.ErrEncryptionMismatch) {
		t.Fatalf("unknown mode: %v", err)
	}
	if _, err := s.SetEncryption(ctx, store.EncryptionWireGuard, "podnetctl on h1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureEncryption(ctx, store.EncryptionWireGuard, "h3"); err != nil {
		t.Fatalf("after the switch: %v", err)
	}
	if _, err := s.EnsureEncryption(ctx, store.EncryptionNone, "h2"); !errors.Is(err, store.ErrEncryptionMismatch) {
		t.Fatalf("the old mode after the switch: %v", err)
	}
}

// A host record with a WireGuard part still decodes in a podnetd that
// predates it (unknown fields are ignored), and Same compares the part.
func TestHostRecordWireGuard(t *testing.T) {
	a := store.Host{Name: "h1", WireGuard: &store.HostWireGuard{PublicKey: "k1", Port: 51820}}
	b := a
	b.WireGuard = &store.HostWireGuard{PublicKey: "k2", Port: 51820}
	if !a.Same(a) || a.Same(b) || a.Same(store.Host{Name: "h1"}) {
		t.Fatal("Same does not compare the WireGuard part")
	}
	s := storetest.New(t)
	ctx := context.Background()
	if err := s.Put(ctx, store.HostKey("h1"), a); err != nil {
		t.Fatal(err)
	}
	var old struct {
		Name     string `json:"name"`
		Underlay string `json:"underlay"`
	}
	if _, err := s.Get(ctx, store.HostKey("h1"), &old); err != nil || old.Name != "h1" {
		t.Fatalf("an older reader: %+v %v", old, err)
	}
}
