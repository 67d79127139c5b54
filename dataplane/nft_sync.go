package dataplane

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// newConn opens an nftables connection whose socket buffers fit a batch of
// about ops netlink messages carrying about elems set elements. A batch
// travels in one sendmsg (the kernel applies only what one message
// carries as a transaction), and the kernel answers every message with an
// ack (rules with an echo too), all queued before we read them: with
// thousands of services the default buffers overflow (EMSGSIZE on send,
// ENOBUFS on receive, the latter after the batch was applied). nft(8)
// sizes its buffers the same way, with the same privileged *FORCE
// options.
func newConn(ops, elems int) (*nftables.Conn, error) {
	const small = 128 << 10 // well below the default buffers
	snd, rcv := ops*512+elems*128, ops*2048
	c, err := nftables.New(nftables.WithSockOptions(func(nc *netlink.Conn) error {
		if snd < small && rcv < small {
			return nil
		}
		snd, rcv = snd+small, rcv+small
		raw, err := nc.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, snd); serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcv)
			}
		})
		return errors.Join(err, serr)
	}))
	if err != nil {
		return nil, fmt.Errorf("nftables connection: %w", err)
	}
	return c, nil
}

// rulesetSize estimates the netlink messages and set elements of rs.
func rulesetSize(rs *ruleset) (ops, elems int) {
	ops = len(rs.chains) + 2*len(rs.rules) + len(rs.counters)
	for _, s := range rs.sets {
		ops += 2 + len(s.elems)/elementsPerMessage
		elems += len(s.elems)
	}
	for _, r := range rs.rules {
		ops += 2 * len(r.anon)
	}
	return ops, elems
}

// kernelObjects lists the chains (true for a base chain), (named) sets
// and counters of the table: empty maps when it does not exist.
func kernelObjects(c *nftables.Conn, t *nftables.Table) (chains map[string]bool, sets map[string]*nftables.Set, counters map[string]uint64, err error) {
	chains, sets, counters = map[string]bool{}, map[string]*nftables.Set{}, map[string]uint64{}
	all, err := c.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list chains of inet %s: %w", t.Name, err)
	}
	for _, ch := range all {
		if ch.Table.Name == t.Name {
			chains[ch.Name] = ch.Hooknum != nil
		}
	}
	if len(chains) == 0 {
		// No table (our table always has chains). GetSets would fail with
		// ENOENT, which the library does not wrap.
		return chains, sets, counters, nil
	}
	ss, err := c.GetSets(t)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list sets of inet %s: %w", t.Name, err)
	}
	for _, s := range ss {
		if !s.Anonymous {
			sets[s.Name] = s
		}
	}
	objs, err := c.GetObjects(t)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list objects of inet %s: %w", t.Name, err)
	}
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			counters[co.Name] = co.Packets
		}
	}
	return chains, sets, counters, nil
}

// syncTable is, in one batch (as `nft -f` would do it):
//
//	add table inet T
//	flush chain inet T C            for every rewritten chain in the kernel
//	delete set inet T S             for every rewritten set whose definition changed
//	add set/map …                   for those and the missing ones
//	add chain …; add rule …         for rewritten and missing chains
//	delete element …; add element … the difference between each rewritten set
//	                                in the kernel and rs (see setDiff), and the
//	                                elements of the sets added above
//	delete chain/set inet T …       for rewritten ones rs no longer has
//
// Packets see the old or the new table, never a mix or nothing.
// Conntrack is not touched: established (and already NATed) connections
// keep flowing. Sets are compared element by element rather than
// recreated, so a sync that finds the kernel right (a restarted podnetd's
// first, a periodic one) sends a handful of chains and no element, however
// many services and ports are programmed: reading the elements back is
// cheaper than writing them. Objects outside rewrite (the previous
// podnetd's services, until a Replace says what they should be) and the
// clients recorded in dynamic affinity sets survive. If the kernel refuses
// the batch, it is built again with every rewritten set recreated, as
// before sets were compared (a set whose type cannot be read back, see
// sameSetDefinition, must not block every later sync).
func (n netlinkNFT) syncTable(rs *ruleset, rewrite func(string) bool) (int, error) {
	changes, err := n.sync(rs, rewrite, true)
	if err == nil {
		return changes, nil
	}
	changes, err2 := n.sync(rs, rewrite, false)
	if err2 != nil {
		return 0, errors.Join(err, err2)
	}
	return changes, nil
}

// sync is one attempt of syncTable: with compare, sets of the same
// definition keep their elements and get the difference.
func (netlinkNFT) sync(rs *ruleset, rewrite func(string) bool, compare bool) (int, error) {
	c, err := newConn(rulesetSize(rs))
	if err != nil {
		return 0, err
	}
	t := inetTable(rs.table)
	kBase, kSets, kCounters, err := kernelObjects(c, t)
	if err != nil {
		return 0, err
	}
	c.AddTable(t)
	// Counters are never recreated: they keep counting across syncs.
	for _, name := range rs.counters {
		if _, ok := kCounters[name]; !ok {
			c.AddObj(&nftables.CounterObj{Table: t, Name: name})
		}
	}
	var ksums map[string]elemSum
	if ks, ok := kSets[setSvcSums]; ok && compare && rs.trustSums {
		els, err := c.GetSetElements(ks)
		if err != nil {
			return 0, fmt.Errorf("list elements of set %s: %w", setSvcSums, err)
		}
		ksums = kernelSums(els)
	}
	// Chains whose content the kernel already holds are left alone: a
	// batch that rewrites a chain makes the commit wait for an RCU grace
	// period (chain_sums.go).
	trustChains := kernelHolds(ksums, chainsSumKey, rs.sums[chainsSumKey])
	rewriteChain := func(name string) bool {
		if compare && (rs.keep[name] || trustChains && isServiceObject(name)) {
			return false
		}
		return rewrite(name)
	}
	kChains := map[string]bool{}
	for name := range kBase {
		kChains[name] = true
		if rewriteChain(name) {
			c.FlushChain(&nftables.Chain{Table: t, Name: name})
		}
	}
	// A chain cannot become a base chain or stop being one: one whose kind
	// changed (a base chain of an older podnetd that is now a section of
	// a base chain, filter_hooks.go) is deleted and added again in this
	// batch, rules and all, whether or not its section is rewritten now.
	// The section's other objects (maps, the chains it jumps to) stay, so
	// nothing it enforced is ever missing.
	for _, cd := range rs.chains {
		if base, ok := kBase[cd.name]; ok && base != (cd.hook != nil) {
			ch := &nftables.Chain{Table: t, Name: cd.name}
			if !rewriteChain(cd.name) {
				c.FlushChain(ch)
			}
			c.DelChain(ch)
			kChains[cd.name] = false
		}
	}
	want := map[string]bool{}
	for _, sd := range rs.sets {
		want[sd.name] = true
	}
	changes := 0
	fill := map[string]bool{} // sets created in this batch
	var diffs []setDiff       // sets kept, with their element changes
	for _, sd := range rs.sets {
		ks, exists := kSets[sd.name]
		switch {
		case exists && !rewrite(sd.name):
			continue
		case exists && sd.dynamic && ks.Dynamic && ks.Timeout == sd.timeout:
			continue // keep the clients it recorded
		case compare && exists && sumEligible(sd) && sameSetDefinition(ks, sd) && kernelHolds(ksums, sd.name, rs.sums[sd.name]):
			continue // its sum says it holds what sd does
		case compare && exists && !sd.dynamic && sameSetDefinition(ks, sd):
			d, err := diffSet(c, ks, sd)
			if err != nil {
				return 0, err
			}
			diffs = append(diffs, d)
			if sd.name != setSvcSums {
				changes += d.size()
			}
			continue
		case exists:
			c.DelSet(&nftables.Set{Table: t, Name: sd.name})
			changes++
		}
		fill[sd.name] = true
	}
	created := map[string]*nftables.Set{}
	for _, sd := range rs.sets {
		if fill[sd.name] {
			created[sd.name] = nftSet(t, sd)
			if err := c.AddSet(created[sd.name], nil); err != nil {
				return 0, fmt.Errorf("add set %s: %w", sd.name, err)
			}
			if sd.name != setSvcSums {
				changes += 1 + len(sd.elems)
			}
		}
	}
	chains := map[string]*nftables.Chain{}
	for _, cd := range rs.chains {
		if kChains[cd.name] && !rewriteChain(cd.name) {
			continue
		}
		chains[cd.name] = c.AddChain(nftChain(t, cd))
		if !kChains[cd.name] {
			changes++
		}
	}
	for _, r := range rs.rules {
		if ch, ok := chains[r.chain]; ok {
			if err := addRule(c, t, ch, r); err != nil {
				return 0, err
			}
		}
	}
	// Elements after the chains: a verdict map's elements name chains
	// created above. Deletions first: a replaced element is deleted and
	// added again.
	for _, d := range diffs {
		if err := d.apply(c, t); err != nil {
			return 0, err
		}
	}
	for _, sd := range rs.sets {
		if s := created[sd.name]; s != nil {
			if err := addElements(c, s, sd.elems); err != nil {
				return 0, err
			}
		}
	}
	wantChain := map[string]bool{}
	for _, cd := range rs.chains {
		wantChain[cd.name] = true
	}
	for name := range kChains {
		if rewrite(name) && !wantChain[name] {
			c.DelChain(&nftables.Chain{Table: t, Name: name})
			changes++
		}
	}
	// Sets nothing wants any more go last: the rules that used them are
	// flushed or gone by now.
	for name := range kSets {
		if rewrite(name) && !want[name] {
			c.DelSet(&nftables.Set{Table: t, Name: name})
			changes++
		}
	}
	for name := range kCounters {
		if rewrite(name) && !slices.Contains(rs.counters, name) {
			c.DeleteObject(&nftables.CounterObj{Table: t, Name: name})
		}
	}
	if err := c.Flush(); err != nil {
		return 0, fmt.Errorf("sync nftables table inet %s: %w", rs.table, err)
	}
	return changes, nil
}

// nftSet is the library's form of sd.
func nftSet(t *nftables.Table, sd setDef) *nftables.Set {
	s := &nftables.Set{
		Table: t, Name: sd.name, KeyType: sd.keyType, DataType: sd.dataType,
		IsMap: sd.isMap, Interval: sd.interval, Concatenation: len(nftables.ConcatSetTypeElements(sd.keyType)) > 1,
	}
	if sd.keyType.GetNFTMagic() == nftables.TypeIFName.GetNFTMagic() && !s.Concatenation {
		// A string key: nft lists it as written only when the set says
		// host byte order (as nft's own sets of strings do).
		s.KeyByteOrder = binaryutil.NativeEndian
	}
	if sd.dynamic {
		// What nft creates for `flags dynamic,timeout; timeout T`.
		s.Dynamic, s.HasTimeout, s.Timeout, s.Size = true, true, sd.timeout, dynamicSetSize
	}
	return s
}

// dynamicSetSize is the size nft gives a dynamic set declared without one.
const dynamicSetSize = 65535

func nftChain(t *nftables.Table, cd chainDef) *nftables.Chain {
	ch := &nftables.Chain{Table: t, Name: cd.name, Hooknum: cd.hook, Priority: cd.priority, Type: cd.kind}
	if cd.hook != nil {
		accept := nftables.ChainPolicyAccept
		ch.Policy = &accept
	}
	return ch
}

// addRule adds r to ch, with the anonymous sets its lookups use created
// just before it in the same batch.
func addRule(c *nftables.Conn, t *nftables.Table, ch *nftables.Chain, r ruleDef) error {
	for _, a := range r.anon {
		s := nftSet(t, a.def)
		s.Anonymous, s.Constant, s.Name, s.ID = true, true, "", 0
		if err := c.AddSet(s, toSetElements(a.def.elems, true)); err != nil {
			return fmt.Errorf("add anonymous set of a rule in chain %s: %w", ch.Name, err)
		}
		a.lookup.SetName, a.lookup.SetID = s.Name, s.ID
	}
	rule := &nftables.Rule{Table: t, Chain: ch, Exprs: r.exprs}
	if r.comment != "" {
		rule.UserData = userdata.AppendString(nil, userdata.TypeComment, r.comment)
	}
	c.AddRule(rule)
	return nil
}

// applyDelta is one batch, in this order: add set (empty), add chain,
// flush chain, add rule, delete element, add element, flush and delete
// chain, delete set. Objects are created before anything refers to them
// and deleted after the last reference is gone.
func (netlinkNFT) applyDelta(table string, d *tableDelta) (int, error) {
	if d.empty() {
		return 0, nil
	}
	c, err := newConn(len(d.addSets)+len(d.addCounters)+len(d.delCounters)+len(d.addChains)+2*len(d.rules)+2*len(d.delChains)+len(d.delSets)+
		(len(d.delElems)+len(d.addElems))/elementsPerMessage+2, len(d.delElems)+len(d.addElems))
	if err != nil {
		return 0, err
	}
	t := inetTable(table)
	for _, sd := range d.addSets {
		if err := c.AddSet(nftSet(t, sd), nil); err != nil {
			return 0, fmt.Errorf("add set %s: %w", sd.name, err)
		}
	}
	for _, name := range d.addCounters {
		c.AddObj(&nftables.CounterObj{Table: t, Name: name})
	}
	chains := map[string]*nftables.Chain{}
	for _, cd := range d.addChains {
		chains[cd.name] = c.AddChain(nftChain(t, cd))
	}
	for _, name := range d.flushChains {
		ch := &nftables.Chain{Table: t, Name: name}
		c.FlushChain(ch)
		chains[name] = ch
	}
	for _, r := range d.rules {
		ch := chains[r.chain]
		if ch == nil {
			return 0, fmt.Errorf("rule for chain %s that the change neither adds nor flushes", r.chain)
		}
		if err := addRule(c, t, ch, r); err != nil {
			return 0, err
		}
	}
	for _, group := range groupBySet(d.delElems) {
		if err := c.SetDeleteElements(&nftables.Set{Table: t, Name: group[0].set}, toSetElements(group, false)); err != nil {
			return 0, fmt.Errorf("delete elements from %s: %w", group[0].set, err)
		}
	}
	for _, group := range groupBySet(d.addElems) {
		if err := addElements(c, &nftables.Set{Table: t, Name: group[0].set}, group); err != nil {
			return 0, err
		}
	}
	sums := &nftables.Set{Table: t, Name: setSvcSums}
	if len(d.sumDel) > 0 {
		if err := c.SetDeleteElements(sums, toSetElements(d.sumDel, false)); err != nil {
			return 0, fmt.Errorf("delete elements from %s: %w", setSvcSums, err)
		}
	}
	if err := addElements(c, sums, d.sumAdd); err != nil {
		return 0, err
	}
	for _, name := range d.delChains {
		c.FlushChain(&nftables.Chain{Table: t, Name: name})
	}
	for _, name := range d.delChains {
		c.DelChain(&nftables.Chain{Table: t, Name: name})
	}
	for _, name := range d.delSets {
		c.DelSet(&nftables.Set{Table: t, Name: name})
	}
	for _, name := range d.delCounters {
		c.DeleteObject(&nftables.CounterObj{Table: t, Name: name})
	}
	if err := c.Flush(); err != nil {
		return 0, fmt.Errorf("update nftables table inet %s: %w", table, err)
	}
	return d.size(), nil
}
