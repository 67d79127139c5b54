package index

import "testing"

func TestAddRemove(t *testing.T) {
	idx := map[string]map[int]struct{}{}
	Add(idx, "a", 1)
	Add(idx, "a", 2)
	Add(idx, "a", 2)
	if len(idx["a"]) != 2 {
		t.Fatalf("set of a = %v, want {1, 2}", idx["a"])
	}
	Remove(idx, "a", 1)
	Remove(idx, "b", 1) // absent: tolerated
	if _, ok := idx["a"][2]; !ok || len(idx["a"]) != 1 {
		t.Fatalf("set of a = %v, want {2}", idx["a"])
	}
	Remove(idx, "a", 2)
	if _, ok := idx["a"]; ok || len(idx) != 0 {
		t.Fatalf("index = %v, want empty (an empty set is dropped)", idx)
	}
}
