package dataplane

import (
	"errors"
	"fmt"
	"slices"
)

// applyDelta models the kernel's element semantics: deleting a missing
// element fails, adding one whose key exists with another value fails, and
// the whole batch is refused or applied.
func (f *fakeNFT) applyDelta(_ string, d *tableDelta) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failUpdate || !f.exists {
		return 0, errors.New("fake: update refused")
	}
	if f.failDelta != nil {
		if err := f.failDelta(d); err != nil {
			return 0, err
		}
	}
	next := map[string]element{}
	for k, v := range f.elems {
		next[k] = v
	}
	for _, el := range d.delElems {
		if _, ok := next[el.id()]; !ok {
			return 0, fmt.Errorf("fake: no element %s in %s", el.text, el.set)
		}
		delete(next, el.id())
	}
	for _, el := range append(d.delElems[:0:0], d.sumDel...) {
		if _, ok := next[el.id()]; !ok {
			return 0, fmt.Errorf("fake: no element %s in %s", el.text, el.set)
		}
		delete(next, el.id())
	}
	for _, el := range append(slices.Clone(d.addElems), d.sumAdd...) {
		if old, ok := next[el.id()]; ok && !sameValue(old, el) {
			return 0, fmt.Errorf("fake: element %s exists in %s", el.text, el.set)
		}
		next[el.id()] = el
	}
	f.elems = next
	f.deltas = append(f.deltas, d)
	return d.size(), nil
}

// lastRewrite reports whether the last syncTable rewrote the object name.
func (f *fakeNFT) lastRewrite(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rewrite != nil && f.rewrite(name)
}

// flushFiltered deletes the fake flows f matches, as the kernel would.
func (c *fakeConntrack) flushFiltered(f ctFilter) error {
	_, err := c.deleteFlows(nil, f.matches)
	return err
}
