package dataplane

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
)

// fakeNFT records what the engine asks of the kernel and models the
// table's map elements, failing like the kernel would (deleting a missing
// element, adding a key that exists with other data) or on demand. Like the
// kernel (TestKernelElementReAdd), it accepts re-adding an identical
// element.
type fakeNFT struct {
	mu          sync.Mutex
	tables      int // syncTable calls
	updates     int // successful updateElements calls
	elems       map[string]element
	exists      bool
	failUpdate  bool
	failReplace bool
	lastRuleset *ruleset
	deltas      []*tableDelta           // successful applyDelta calls
	failDelta   func(*tableDelta) error // makes applyDelta fail on demand
	failSync    func(*ruleset) error    // makes syncTable fail on demand
	rewrite     func(string) bool       // of the last syncTable
	changes     []int                   // elements each syncTable changed
}

func newFakeNFT() *fakeNFT { return &fakeNFT{elems: map[string]element{}} }

func (f *fakeNFT) syncTable(rs *ruleset, rewrite func(string) bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failReplace {
		return 0, errors.New("fake: replace refused")
	}
	if f.failSync != nil {
		if err := f.failSync(rs); err != nil {
			return 0, err
		}
	}
	f.tables++
	f.rewrite = rewrite
	existed := f.exists
	f.exists = true
	f.lastRuleset = rs
	next := map[string]element{}
	for k, el := range f.elems {
		if !rewrite(el.set) {
			next[k] = el
		}
	}
	for _, s := range rs.sets {
		if (s.isMap || isServiceObject(s.name)) && (rewrite(s.name) || !existed) {
			for _, el := range s.elems {
				next[el.id()] = el
			}
		}
	}
	changes := 0 // as the kernel's: svc-sums is not counted
	for k, el := range next {
		if old, ok := f.elems[k]; el.set != setSvcSums && (!ok || !sameValue(old, el) || old.comment != el.comment) {
			changes++
		}
	}
	for k, el := range f.elems {
		if _, ok := next[k]; !ok && el.set != setSvcSums {
			changes++
		}
	}
	f.elems = next
	f.changes = append(f.changes, changes)
	return changes, nil
}

func (f *fakeNFT) updateElements(table string, del, add []element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failUpdate || !f.exists {
		return errors.New("fake: update refused")
	}
	next := map[string]element{}
	for k, v := range f.elems {
		next[k] = v
	}
	for _, el := range del {
		if _, ok := next[el.id()]; !ok {
			return errors.New("fake: no such element")
		}
		delete(next, el.id())
	}
	for _, el := range add {
		if cur, ok := next[el.id()]; ok && !bytes.Equal(cur.val, el.val) {
			return errors.New("fake: element exists with other data")
		}
		next[el.id()] = el
	}
	f.elems = next
	f.updates++
	return nil
}

func (f *fakeNFT) deleteTable(string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exists = false
	f.elems = map[string]element{}
	return nil
}

func (f *fakeNFT) counters(string) (map[string]uint64, error) { return map[string]uint64{}, nil }

func (f *fakeNFT) mapKeys(_ string, elems []element) ([]element, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []element
	for _, el := range elems {
		if _, ok := f.elems[el.id()]; ok {
			out = append(out, el)
		}
	}
	return out, nil
}

func (f *fakeNFT) tableIntact(string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exists, nil
}

// elementTexts returns the programmed map elements as nft text.
func (f *fakeNFT) elementTexts() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for _, el := range f.elems {
		out[el.set+": "+el.text] = true
	}
	return out
}

type fakeAccepts struct {
	mu       sync.Mutex
	ensures  int
	cleanups int
	ok       bool
	fail     bool
}

func (a *fakeAccepts) ensure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("fake: iptables refused")
	}
	a.ensures++
	a.ok = true
	return nil
}

func (a *fakeAccepts) intact() (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok, nil
}

func (a *fakeAccepts) cleanup() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cleanups++
	a.ok = false
	return nil
}

// fakeConntrack holds flows and deletes the matching ones.
type fakeConntrack struct {
	mu    sync.Mutex
	flows []*netlink.ConntrackFlow
	local map[netip.Addr]bool
}

func (c *fakeConntrack) deleteFlows(_ []family, match func(*netlink.ConntrackFlow) bool) (uint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keep []*netlink.ConntrackFlow
	var n uint
	for _, f := range c.flows {
		if match(f) {
			n++
		} else {
			keep = append(keep, f)
		}
	}
	c.flows = keep
	return n, nil
}

func (c *fakeConntrack) localAddrs() (map[netip.Addr]bool, error) { return c.local, nil }

func (c *fakeConntrack) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.flows)
}

// fakeEngine is an Engine over fakes; inUse lists host ports held by
// "other processes" as "proto/port".
type fakeEngine struct {
	*Engine
	nft   *fakeNFT
	ipt   *fakeAccepts
	ct    *fakeConntrack
	inUse map[string]bool
}

func newFakeEngine(t *testing.T) *fakeEngine {
	fe := &fakeEngine{nft: newFakeNFT(), ipt: &fakeAccepts{}, ct: &fakeConntrack{}, inUse: map[string]bool{}}
	opts := withDefaults(Options{
		Logger:         testLogger(t),
		EphemeralPorts: [2]uint16{40000, 40004},
		PortInUse: func(p Proto, _ netip.Addr, port uint16) bool {
			return fe.inUse[fmt.Sprintf("%s/%d", p, port)]
		},
	})
	fe.Engine = newEngine(opts, fe.nft, fe.ipt, fe.ct)
	return fe
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func ip(s string) net.IP { return net.ParseIP(s) }
