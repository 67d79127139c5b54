package index

import (
	"slices"
	"testing"
)

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

func TestAddRemoveSmall(t *testing.T) {
	idx := map[string][]int{}
	AddSmall(idx, "a", 1)
	AddSmall(idx, "a", 2)
	AddSmall(idx, "a", 2)
	AddSmall(idx, "a", 3)
	if !slices.Equal(idx["a"], []int{1, 2, 3}) {
		t.Fatalf("set of a = %v, want [1 2 3]", idx["a"])
	}
	RemoveSmall(idx, "a", 1)
	RemoveSmall(idx, "a", 9) // absent: tolerated
	RemoveSmall(idx, "b", 1)
	got := slices.Sorted(slices.Values(idx["a"]))
	if !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("set of a = %v, want {2, 3}", idx["a"])
	}
	RemoveSmall(idx, "a", 2)
	RemoveSmall(idx, "a", 3)
	if _, ok := idx["a"]; ok || len(idx) != 0 {
		t.Fatalf("index = %v, want empty (an empty set is dropped)", idx)
	}
}
