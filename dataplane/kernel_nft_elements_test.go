package dataplane

import (
	"net/netip"
	"strings"
	"testing"
)

// TestKernelElementReAdd pins down what fakeNFT models: in one batch
// without NLM_F_EXCL (how updateElements adds), the kernel accepts an
// element that already exists with the same data and leaves it as it is,
// but refuses the same key with other data (EEXIST) and deleting an
// element that is not there (ENOENT), changing nothing.
func TestKernelElementReAdd(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	web := l.bridge(1)
	c1 := l.container(web, 2)
	l.addNetwork(web)
	ms := l.publish("5a6b7c8d9e0f00000000", web, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})
	el := mappingElement(ms[0], "5a6b7c8d9e0f00000000")
	list := func() string {
		t.Helper()
		out, err := l.nft("list", "map", "inet", "podnet", el.set)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := list()
	if !strings.Contains(before, "tcp . 8080") || !strings.Contains(before, ": "+c1.ip4.String()+" . 80") {
		t.Fatalf("published element missing:\n%s", before)
	}

	if err := l.host.Do(func() error { return netlinkNFT{}.updateElements("podnet", nil, []element{el}) }); err != nil {
		t.Fatalf("re-adding an identical element: kernel said %v, want success", err)
	}
	if after := list(); canonicalListing(after) != canonicalListing(before) {
		t.Fatalf("re-adding an identical element changed the map:\n%s\nwas:\n%s", after, before)
	}

	other := ms[0]
	other.ContainerIP = netip.MustParseAddr("10.200.1.3")
	clash := mappingElement(other, "5a6b7c8d9e0f00000000")
	if err := l.host.Do(func() error { return netlinkNFT{}.updateElements("podnet", nil, []element{clash}) }); err == nil {
		t.Fatal("adding an existing key with other data succeeded; the kernel must refuse it")
	}
	gone := mappingElement(Mapping{Proto: TCP, HostPort: 8081, ContainerIP: c1.ip4, ContainerPort: 80}, "x")
	if err := l.host.Do(func() error { return netlinkNFT{}.updateElements("podnet", []element{gone}, nil) }); err == nil {
		t.Fatal("deleting a missing element succeeded; the kernel must refuse it")
	}
	if after := list(); canonicalListing(after) != canonicalListing(before) {
		t.Fatalf("refused batches changed the map:\n%s\nwas:\n%s", after, before)
	}
}

// TestFakeMatchesKernelOnReAdd: the fake accepts an identical re-add and
// refuses a clash, as TestKernelElementReAdd shows the kernel does.
func TestFakeMatchesKernelOnReAdd(t *testing.T) {
	f := newFakeNFT()
	m := Mapping{Proto: TCP, HostPort: 8080, ContainerIP: netip.MustParseAddr("10.1.0.2"), ContainerPort: 80}
	el := mappingElement(m, "ep")
	if _, err := f.syncTable(&ruleset{}, func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if err := f.updateElements("podnet", nil, []element{el}); err != nil {
		t.Fatal(err)
	}
	if err := f.updateElements("podnet", nil, []element{el}); err != nil {
		t.Fatalf("identical re-add refused by the fake: %v", err)
	}
	m.ContainerIP = netip.MustParseAddr("10.1.0.3")
	if err := f.updateElements("podnet", nil, []element{mappingElement(m, "ep")}); err == nil {
		t.Fatal("the fake accepted a clashing element")
	}
	if got := f.elementTexts(); len(got) != 1 || !got[el.set+": "+el.text] {
		t.Fatalf("fake elements %v, want only %s", got, el.text)
	}
}
