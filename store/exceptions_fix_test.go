package store

import (
	"net/netip"
	"testing"
)

var fixPool = netip.MustParsePrefix("10.60.0.0/16")

// TestExceptionFix checks which records the fix writes and deletes, and
// that it leaves correct and harmless records alone.
func TestExceptionFix(t *testing.T) {
	a := netip.MustParseAddr("10.60.0.70")
	blk := netip.MustParsePrefix("10.60.0.64/26")
	base := ExcState{Addr: a, Kind: AddrContainer, Owner: "c", AddrRev: 10, Block: blk, Claimant: "b", BlockRev: 5}
	for _, c := range []struct {
		name string
		edit func(*ExcState)
		want string // "", "put", "delete"
	}{
		{"missing record", func(*ExcState) {}, "put"},
		{"correct record", func(s *ExcState) { s.ExcHost, s.ExcRev = "c", 11 }, ""},
		{"record names another owner", func(s *ExcState) { s.ExcHost, s.ExcRev = "x", 11 }, "put"},
		{"own block, no record", func(s *ExcState) { s.Claimant = "c" }, ""},
		{"own block, harmless record", func(s *ExcState) { s.Claimant, s.ExcHost, s.ExcRev = "c", "c", 11 }, ""},
		{"own block, wrong record", func(s *ExcState) { s.Claimant, s.ExcHost, s.ExcRev = "c", "x", 11 }, "delete"},
		{"address gone", func(s *ExcState) { s.Kind, s.Owner, s.AddrRev, s.ExcHost, s.ExcRev = "", "", 0, "c", 11 }, "delete"},
		{"gateway with a record", func(s *ExcState) { s.Kind, s.Owner, s.ExcHost, s.ExcRev = AddrGateway, "", "c", 11 }, "delete"},
		{"unclaimed block", func(s *ExcState) { s.Block, s.Claimant, s.BlockRev = netip.Prefix{}, "", 0 }, "put"},
	} {
		s := base
		c.edit(&s)
		cmps, ops, ok := ExceptionFix(fixPool, s)
		got := ""
		if ok {
			got = "put"
			if len(ops) != 1 {
				t.Fatalf("%s: %d ops", c.name, len(ops))
			}
			if len(cmps) < 2 {
				t.Errorf("%s: a fix must be conditioned on the records it read, got %d conditions", c.name, len(cmps))
			}
		}
		if ok && ops[0].del {
			got = "delete"
		}
		if got != c.want {
			t.Errorf("%s: fix %q, want %q", c.name, got, c.want)
		}
	}
}
