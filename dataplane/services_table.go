package dataplane

import (
	"bytes"
	"maps"
	"slices"

	"github.com/google/nftables/expr"
)

// svcTable is the engine's service state: what it was told, what each
// service contributes to the kernel, and reference counts of the objects
// services share. Guarded by Engine.mu.
type svcTable struct {
	// known is set by the first Replace (Apply): from then on memory is
	// the truth for the service section and a Sync makes the kernel match
	// it. Before that (a restarted podnetd), the kernel keeps the previous
	// podnetd's service rules untouched.
	known bool
	svcs  map[string]*svcState
	objs  map[string]*svcObjects // programmed objects, by service name
	// owners maps each address:port and NodePort to the service that
	// answers on it.
	owners map[svcKey]string
	refs   map[string]int // shared object id → services using it
	shared map[string]int // shared element id → services holding it
	// sharedElems remembers a shared element by id (its bytes and text).
	sharedElems map[string]element
	// sums are the element sums of svc-sums as the kernel holds them
	// (see services_sums.go); nil until a full sync wrote them.
	sums map[string]elemSum
	// journal, while a change is open (begin), holds the undo of every
	// mutation, so a change the kernel refused is rolled back in time
	// proportional to the change, not to the table.
	journal []func()
	open    bool
}

// begin opens a change; rollback undoes it, commit keeps it.
func (t *svcTable) begin() { t.journal, t.open = nil, true }

func (t *svcTable) commit() { t.journal, t.open = nil, false }

func (t *svcTable) rollback() {
	for i := len(t.journal) - 1; i >= 0; i-- {
		t.journal[i]()
	}
	t.commit()
}

// put and drop change a map of the table, journaling the undo.
func put[K comparable, V any](t *svcTable, m map[K]V, k K, v V) {
	if t.open {
		old, had := m[k]
		t.journal = append(t.journal, func() {
			if had {
				m[k] = old
			} else {
				delete(m, k)
			}
		})
	}
	m[k] = v
}

func drop[K comparable, V any](t *svcTable, m map[K]V, k K) {
	old, had := m[k]
	if !had {
		return
	}
	if t.open {
		t.journal = append(t.journal, func() { m[k] = old })
	}
	delete(m, k)
}

// count changes a counter by delta, dropping it at zero.
func count(t *svcTable, m map[string]int, k string, delta int) int {
	n := m[k] + delta
	if n == 0 {
		drop(t, m, k)
	} else {
		put(t, m, k, n)
	}
	return n
}

func newSvcTable() *svcTable {
	return &svcTable{svcs: map[string]*svcState{}, objs: map[string]*svcObjects{}, owners: map[svcKey]string{},
		refs: map[string]int{}, shared: map[string]int{}, sharedElems: map[string]element{}}
}

// clone copies the table deeply enough for a rollback: maps are copied,
// states and objects are never mutated in place.
func (t *svcTable) clone() *svcTable {
	return &svcTable{known: t.known, svcs: maps.Clone(t.svcs), objs: maps.Clone(t.objs), owners: maps.Clone(t.owners),
		refs: maps.Clone(t.refs), shared: maps.Clone(t.shared), sharedElems: maps.Clone(t.sharedElems), sums: maps.Clone(t.sums)}
}

// claim gives s each of its keys that is free: a key another service
// holds, or that held says a port of this host holds (a NodePort a
// process listens on, or a container publishes with -p), is blocked with
// the reason instead, and only that element is left out.
func (t *svcTable) claim(s *svcState, held func(svcKey) string) {
	s.blocked = nil
	for _, k := range s.keys() {
		why := ""
		if o, ok := t.owners[k]; ok && o != s.spec.Name {
			why = "is already served by service " + o
		} else if held != nil {
			why = held(k)
		}
		if why != "" {
			if s.blocked == nil {
				s.blocked = map[svcKey]string{}
			}
			s.blocked[k] = why
			continue
		}
		put(t, t.owners, k, s.spec.Name)
	}
}

// release frees the keys st holds.
func (t *svcTable) release(st *svcState) {
	if st == nil {
		return
	}
	for _, k := range st.keys() {
		if t.owners[k] == st.spec.Name {
			drop(t, t.owners, k)
		}
	}
}

// tableDelta is an incremental change of the service section, applied in
// one batch in the order of its fields (see netlinkNFT.applyDelta).
type tableDelta struct {
	addSets     []setDef // created empty; their elements are in addElems
	addChains   []chainDef
	flushChains []string
	rules       []ruleDef // of added and flushed chains
	delElems    []element
	addElems    []element
	// sumDel and sumAdd update svc-sums for the element changes above
	// (sumDelta); not counted by size.
	sumDel, sumAdd []element
	delChains      []string // flushed, then deleted
	delSets        []string
	// named counters, added first and deleted last (network policy)
	addCounters, delCounters []string

	// reference counts before the delta, of what it touched (see finish)
	refsBefore, elemsBefore map[string]int
	// countsOnly: the delta is not sent (a Replace syncs the whole table
	// instead); setObjects then only keeps the table's counts.
	countsOnly bool
}

func (d *tableDelta) empty() bool { return d.size()+len(d.rules) == 0 }

// size counts the kernel objects d adds, rewrites or deletes: sets,
// chains, elements and counters (rules are counted with their chain).
func (d *tableDelta) size() int {
	return len(d.addSets) + len(d.addChains) + len(d.flushChains) + len(d.delElems) +
		len(d.addElems) + len(d.delChains) + len(d.delSets) + len(d.addCounters) + len(d.delCounters)
}

// setObjects replaces name's programmed objects with o (nil: none),
// updating reference counts, and adds the service's own kernel changes to
// d. Shared objects and elements are settled by finish, once every
// service of the delta is in.
func (t *svcTable) setObjects(d *tableDelta, name string, o *svcObjects) {
	old := t.objs[name]
	if old == nil {
		old = &svcObjects{}
	}
	if o == nil {
		o = &svcObjects{}
	}
	if !d.countsOnly {
		diffOwnSets(d, old.sets, o.sets)
		diffOwnChains(d, old.chains, old.rules, o.chains, o.rules)
		del, add := diffElements(old.elems, o.elems)
		d.delElems = append(d.delElems, del...)
		d.addElems = append(d.addElems, add...)
	}
	for _, id := range o.uses {
		d.touchRef(t, id)
		count(t, t.refs, id, 1)
	}
	for _, id := range old.uses {
		d.touchRef(t, id)
		count(t, t.refs, id, -1)
	}
	for _, el := range o.shared {
		d.touchElem(t, el)
		count(t, t.shared, el.id(), 1)
	}
	for _, el := range old.shared {
		d.touchElem(t, el)
		count(t, t.shared, el.id(), -1)
	}
	if len(o.elems)+len(o.shared)+len(o.sets)+len(o.chains)+len(o.uses) == 0 {
		drop(t, t.objs, name)
	} else {
		put(t, t.objs, name, o)
	}
}

func (d *tableDelta) touchRef(t *svcTable, id string) {
	if d.refsBefore == nil {
		d.refsBefore = map[string]int{}
	}
	if _, ok := d.refsBefore[id]; !ok {
		d.refsBefore[id] = t.refs[id]
	}
}

func (d *tableDelta) touchElem(t *svcTable, el element) {
	if d.elemsBefore == nil {
		d.elemsBefore = map[string]int{}
	}
	if _, ok := d.elemsBefore[el.id()]; !ok {
		d.elemsBefore[el.id()] = t.shared[el.id()]
		if _, known := t.sharedElems[el.id()]; !known {
			put(t, t.sharedElems, el.id(), el)
		}
	}
}

// finish turns the reference counts that went from zero or to zero into
// kernel changes: shared maps and chains created before anything uses
// them, deleted after the last user is gone.
func (d *tableDelta) finish(t *svcTable) {
	var addSets []setDef
	var addChains []chainDef
	var addRules []ruleDef
	for _, id := range sortedKeys(d.refsBefore) {
		before, after := d.refsBefore[id], t.refs[id]
		sets, chains, rules := sharedObjects(id)
		switch {
		case before == 0 && after > 0:
			addSets, addChains, addRules = append(addSets, sets...), append(addChains, chains...), append(addRules, rules...)
		case before > 0 && after == 0:
			for _, s := range sets {
				d.delSets = append(d.delSets, s.name)
			}
			for _, c := range chains {
				d.delChains = append(d.delChains, c.name)
			}
		}
	}
	d.addSets = append(addSets, d.addSets...)
	d.addChains = append(addChains, d.addChains...)
	d.rules = append(addRules, d.rules...)
	for _, id := range sortedKeys(d.elemsBefore) {
		before, after := d.elemsBefore[id], t.shared[id]
		el := t.sharedElems[id]
		switch {
		case before == 0 && after > 0:
			d.addElems = append(d.addElems, el)
		case before > 0 && after == 0:
			d.delElems = append(d.delElems, el)
			drop(t, t.sharedElems, id)
		case after == 0:
			drop(t, t.sharedElems, id)
		}
	}
	d.refsBefore, d.elemsBefore = nil, nil
	if !d.countsOnly {
		t.sumDelta(d)
	}
}

// diffOwnSets adds a service's own sets that appear and deletes those that
// go; a set whose definition changed (another timeout) is recreated.
func diffOwnSets(d *tableDelta, old, new []setDef) {
	for _, s := range new {
		i := slices.IndexFunc(old, func(o setDef) bool { return o.name == s.name })
		if i >= 0 && sameSetDef(old[i], s) {
			continue
		}
		if i >= 0 {
			d.delSets = append(d.delSets, s.name)
		}
		d.addSets = append(d.addSets, s)
	}
	for _, s := range old {
		if !slices.ContainsFunc(new, func(n setDef) bool { return n.name == s.name }) {
			d.delSets = append(d.delSets, s.name)
		}
	}
}

func sameSetDef(a, b setDef) bool {
	return a.typeText == b.typeText && a.dynamic == b.dynamic && a.timeout == b.timeout && a.interval == b.interval
}

// diffOwnChains adds new chains, rewrites (flush and refill) changed ones
// and deletes those that go.
func diffOwnChains(d *tableDelta, oldChains []chainDef, oldRules []ruleDef, newChains []chainDef, newRules []ruleDef) {
	texts := func(rules []ruleDef, chain string) []string {
		var out []string
		for _, r := range rules {
			if r.chain == chain {
				out = append(out, r.text)
			}
		}
		return out
	}
	for _, c := range newChains {
		had := slices.ContainsFunc(oldChains, func(o chainDef) bool { return o.name == c.name })
		if had && slices.Equal(texts(oldRules, c.name), texts(newRules, c.name)) {
			continue
		}
		if had {
			d.flushChains = append(d.flushChains, c.name)
		} else {
			d.addChains = append(d.addChains, c)
		}
		for _, r := range newRules {
			if r.chain == c.name {
				d.rules = append(d.rules, r)
			}
		}
	}
	for _, c := range oldChains {
		if !slices.ContainsFunc(newChains, func(n chainDef) bool { return n.name == c.name }) {
			d.delChains = append(d.delChains, c.name)
		}
	}
}

// section is the whole service section as it should be in the kernel:
// skeleton, shared buckets and pick chains, every service's objects and
// elements, and svc-sums holding the sums of those elements (also
// returned, by set). Deterministic: services in name order, shared objects
// in id order.
func (t *svcTable) section() (sets []setDef, chains []chainDef, rules []ruleDef, sums map[string]elemSum) {
	sets, chains, rules = serviceSkeleton()
	for _, id := range sortedKeys(t.refs) {
		s, c, r := sharedObjects(id)
		sets, chains, rules = append(sets, s...), append(chains, c...), append(rules, r...)
	}
	var elems []element
	for _, name := range sortedKeys(t.objs) {
		o := t.objs[name]
		sets, chains, rules = append(sets, o.sets...), append(chains, o.chains...), append(rules, o.rules...)
		elems = append(elems, o.elems...)
	}
	for _, id := range sortedKeys(t.sharedElems) {
		elems = append(elems, t.sharedElems[id])
	}
	idx := map[string]int{}
	for i, s := range sets {
		idx[s.name] = i
	}
	for _, el := range elems {
		if i, ok := idx[el.set]; ok {
			sets[i].elems = append(sets[i].elems, el)
		}
	}
	sums = map[string]elemSum{chainsSumKey: chainsTotal(chainSums(chains, rules))}
	for _, sd := range sets {
		if sumEligible(sd) {
			sums[sd.name] = sumOf(sd.elems)
		}
	}
	if i, ok := idx[setSvcSums]; ok {
		sets[i] = sumsSetDef(sums)
	}
	return sets, chains, rules, sums
}

// sameValue reports whether two elements of one key map to the same
// value (data or verdict).
func sameValue(a, b element) bool {
	if !bytes.Equal(a.val, b.val) {
		return false
	}
	if a.verdict == nil || b.verdict == nil {
		return a.verdict == b.verdict
	}
	return verdictEqual(a.verdict, b.verdict)
}

func verdictEqual(a, b *expr.Verdict) bool { return a.Kind == b.Kind && a.Chain == b.Chain }
