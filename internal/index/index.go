// Package index keeps the secondary indexes of podnet's in-memory views
// (the service catalog, the cluster DNS records): maps from a key to the
// set of entries that carry it, where an empty set is removed so the
// index never outgrows what it indexes.
package index

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
