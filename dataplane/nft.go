package dataplane

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// nftBackend is the kernel side of the nftables table. The engine talks to
// it through this interface so unit tests can fake the kernel (and make it
// fail) without root.
type nftBackend interface {
	// syncTable makes the table hold rs, in one transaction (see
	// netlinkNFT.syncTable): chains and sets for which rewrite is true end
	// up exactly as in rs; the others are only created when missing. It
	// returns how many sets, chains and elements it added or deleted.
	syncTable(rs *ruleset, rewrite func(name string) bool) (int, error)
	// updateElements deletes then adds map elements in one transaction.
	updateElements(table string, del, add []element) error
	// applyDelta applies an incremental change of the service section in
	// one transaction; it returns d.size().
	applyDelta(table string, d *tableDelta) (int, error)
	// deleteTable removes the table; absence is not an error.
	deleteTable(table string) error
	// tableIntact reports whether the table and its rules are in place.
	tableIntact(table string) (bool, error)
	// counters reads the packets of the table's named counters.
	counters(table string) (map[string]uint64, error)
	// mapKeys returns those of elems whose key is in their set now.
	mapKeys(table string, elems []element) ([]element, error)
}

// elementsPerMessage bounds one NEWSETELEM message; a batch may hold many.
const elementsPerMessage = 256

// netlinkNFT implements nftBackend with google/nftables. Every call opens a
// fresh netlink socket in the calling thread's network namespace, so the
// engine acts where podnetd (or a test's ns.Do) runs.
type netlinkNFT struct{}

var _ nftBackend = netlinkNFT{}

func inetTable(name string) *nftables.Table {
	return &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
}

func addElements(c *nftables.Conn, s *nftables.Set, elems []element) error {
	for len(elems) > 0 {
		n := min(len(elems), elementsPerMessage)
		if err := c.SetAddElements(s, toSetElements(elems[:n], true)); err != nil {
			return fmt.Errorf("add elements to %s: %w", s.Name, err)
		}
		elems = elems[n:]
	}
	return nil
}

func toSetElements(elems []element, withData bool) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(elems))
	for _, el := range elems {
		se := nftables.SetElement{Key: el.key, IntervalEnd: el.keyEnd}
		if withData {
			se.Val = el.val
			se.VerdictData = el.verdict
			se.Comment = el.comment
		}
		out = append(out, se)
	}
	return out
}

// updateElements is `nft -f` of: delete element inet T M { … }; add element
// inet T M { … } — one batch. It fails as a whole if an element to delete
// is missing or one to add exists, i.e. when the kernel drifted from what
// the engine believes; the engine then rebuilds the table.
func (netlinkNFT) updateElements(table string, del, add []element) error {
	if len(del) == 0 && len(add) == 0 {
		return nil
	}
	c, err := newConn(2+(len(del)+len(add))/elementsPerMessage, len(del)+len(add))
	if err != nil {
		return err
	}
	t := inetTable(table)
	for _, group := range groupBySet(del) {
		s := &nftables.Set{Table: t, Name: group[0].set}
		if err := c.SetDeleteElements(s, toSetElements(group, false)); err != nil {
			return fmt.Errorf("delete elements from %s: %w", s.Name, err)
		}
	}
	for _, group := range groupBySet(add) {
		if err := addElements(c, &nftables.Set{Table: t, Name: group[0].set}, group); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("update map elements in table inet %s: %w", table, err)
	}
	return nil
}

func groupBySet(elems []element) [][]element {
	var groups [][]element
	idx := map[string]int{}
	for _, el := range elems {
		i, ok := idx[el.set]
		if !ok {
			i = len(groups)
			idx[el.set] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], el)
	}
	return groups
}

// deleteTable is `nft delete table inet T`, tolerating its absence.
func (netlinkNFT) deleteTable(table string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables connection: %w", err)
	}
	c.DelTable(inetTable(table))
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete nftables table inet %s: %w", table, err)
	}
	return nil
}

// tableIntact is the canary: `nft list chain inet T prerouting` succeeds
// and shows rules. A missing table (nft flush ruleset, firewalld reload) or
// a flushed one (nft flush table) both read as not intact.
func (netlinkNFT) tableIntact(table string) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("nftables connection: %w", err)
	}
	t := inetTable(table)
	rules, err := c.GetRules(t, &nftables.Chain{Table: t, Name: chainPrerouting})
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("list chain inet %s %s: %w", table, chainPrerouting, err)
	}
	return len(rules) > 0, nil
}

// diffElements returns what turns old into new: elements to delete (gone,
// or same key with another value) and elements to add.
func diffElements(old, new []element) (del, add []element) {
	oldByID := map[string]element{}
	for _, el := range old {
		oldByID[el.id()] = el
	}
	newByID := map[string]element{}
	for _, el := range new {
		newByID[el.id()] = el
	}
	for _, el := range old {
		if n, ok := newByID[el.id()]; !ok || !sameValue(n, el) {
			del = append(del, el)
		}
	}
	for _, el := range new {
		if o, ok := oldByID[el.id()]; !ok || !sameValue(o, el) {
			add = append(add, el)
		}
	}
	return del, add
}

// mapKeys lists the sets elems belong to and returns the elems whose key
// is there (with whatever value), for a delete that must not fail.
func (netlinkNFT) mapKeys(table string, elems []element) ([]element, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables connection: %w", err)
	}
	t := inetTable(table)
	var out []element
	for _, group := range groupBySet(elems) {
		s, err := c.GetSetByName(t, group[0].set)
		if err != nil {
			return nil, fmt.Errorf("look up set %s: %w", group[0].set, err)
		}
		have, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("list set %s: %w", group[0].set, err)
		}
		keys := map[string]bool{}
		for _, h := range have {
			keys[string(h.Key)] = true
		}
		for _, el := range group {
			if keys[string(el.key)] {
				out = append(out, el)
			}
		}
	}
	return out, nil
}
