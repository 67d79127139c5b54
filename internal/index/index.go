// Package index keeps the secondary indexes of podnet's in-memory views
// (the service catalog, the cluster DNS records): maps from a key to the
// set of entries that carry it, where an empty set is removed so the
// index never outgrows what it indexes.
package index

import "slices"

// Add puts v into the set of k.
func Add[K, V comparable](idx map[K]map[V]struct{}, k K, v V) {
	s := idx[k]
	if s == nil {
		s = map[V]struct{}{}
		idx[k] = s
	}
	s[v] = struct{}{}
}

// Remove takes v out of the set of k, and drops the set once empty.
func Remove[K, V comparable](idx map[K]map[V]struct{}, k K, v V) {
	if s := idx[k]; s != nil {
		delete(s, v)
		if len(s) == 0 {
			delete(idx, k)
		}
	}
}

// AddSmall puts v into the small set of k: a slice, for sets that hold a
// handful of entries (a container's endpoints, the selected containers of
// one host), where a map per key would cost ten times the entries it holds.
// Adding an entry already there changes nothing.
func AddSmall[K, V comparable](idx map[K][]V, k K, v V) {
	s := idx[k]
	if slices.Contains(s, v) {
		return
	}
	idx[k] = append(s, v)
}

// RemoveSmall takes v out of the small set of k, and drops the set once
// empty. Order is not kept.
func RemoveSmall[K, V comparable](idx map[K][]V, k K, v V) {
	s := idx[k]
	i := slices.Index(s, v)
	if i < 0 {
		return
	}
	last := len(s) - 1
	s[i] = s[last]
	var zero V
	s[last] = zero // no reference kept past the slice's length
	if last == 0 {
		delete(idx, k)
		return
	}
	idx[k] = s[:last]
}
