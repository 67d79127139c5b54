package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// The cluster DNS's name index: for every ready endpoint, one key per name
// it answers to (container name, network aliases) and one per address,
// written by the endpoint's own host in the same transaction as its
// metadata (WriteEndpointMeta). A host resolving a name reads and watches
// dns/names/<label>/ only: nothing of a container start reaches a host
// that never asked for its name.
//
//	dns/names/<label>/<host>/<endpoint>    DNSName   a ready endpoint answering to <label>
//	dns/addrs/<hex ip>/<host>/<endpoint>   DNSName   the same endpoint, for PTR queries of its address
const (
	DNSNamesPrefix = "dns/names/"
	DNSAddrsPrefix = "dns/addrs/"
)

// MetaLayoutNames is HostAlive.MetaLayout of a podnetd that keeps the name
// index of its host's endpoints (MetaLayoutSelected: that and the
// selection index, selindex.go). Older podnetds leave it 0: their
// endpoints are found only in epmeta/<host>/, which resolvers follow
// for such hosts while they live (a rolling upgrade).
const (
	MetaLayoutNames    = 1
	MetaLayoutSelected = 2
)

// DNSName is the value of a name index key: what a DNS answer needs.
type DNSName struct {
	// Name is the container name as written (what PTR answers).
	Name string     `json:"name"`
	IPv4 netip.Addr `json:"ipv4,omitzero"`
	IPv6 netip.Addr `json:"ipv6,omitzero"`
}

// DNSLabel is the index form of a container name or network alias: ASCII
// lower case without a trailing dot, a single label (a dotted name would
// shadow that name of the outside world). It reports false for names the
// cluster DNS never answers.
func DNSLabel(name string) (string, bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || strings.ContainsAny(name, "./") {
		return "", false
	}
	return ASCIILower(name), true
}

// ASCIILower lower-cases ASCII letters only (DNS compares names so).
func ASCIILower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// DNSNamePrefix lists the endpoints answering to label (an index form).
func DNSNamePrefix(label string) string { return DNSNamesPrefix + label + "/" }

// DNSAddrPrefix lists the endpoints holding a.
func DNSAddrPrefix(a netip.Addr) string { return DNSAddrsPrefix + AddrName(a) + "/" }

// SplitDNSKey reads the host and endpoint of a key under prefix (a
// DNSNamePrefix or DNSAddrPrefix).
func SplitDNSKey(key, prefix string) (host, ep string, ok bool) {
	return SplitHostKey(key, prefix)
}

// dnsIndex returns the index keys of m's endpoint and their value; none
// for a missing or unready endpoint (never answered).
func dnsIndex(host, ep string, m *EndpointMeta) (map[string]DNSName, DNSName) {
	if m == nil || !m.Ready {
		return nil, DNSName{}
	}
	var v DNSName
	if a := m.IPv4.Unmap(); a.Is4() {
		v.IPv4 = a
	}
	if a := m.IPv6; a.Is6() && !a.Is4In6() {
		v.IPv6 = a.WithZone("")
	}
	if !v.IPv4.IsValid() && !v.IPv6.IsValid() {
		return nil, v
	}
	keys := map[string]DNSName{}
	for _, n := range append([]string{m.Name}, m.Aliases...) {
		l, ok := DNSLabel(n)
		if !ok {
			continue
		}
		if v.Name == "" {
			v.Name = n // PTR answers the name as written, one that resolves back
		}
		keys[DNSNamePrefix(l)+host+"/"+ep] = v
	}
	if len(keys) == 0 {
		return nil, v
	}
	for _, a := range []netip.Addr{v.IPv4, v.IPv6} {
		if a.IsValid() {
			keys[DNSAddrPrefix(a)+host+"/"+ep] = v
		}
	}
	return keys, v
}

// DNSIndexOps returns the writes that take the name index of endpoint ep
// of host from what old says to what m says (nil: none, as for a deleted
// endpoint): index keys only old had are deleted, keys whose value
// changes are written, unchanged ones are left alone (so a change of
// labels alone sends nothing to resolvers).
func DNSIndexOps(host, ep string, old, m *EndpointMeta) []Op {
	was, _ := dnsIndex(host, ep, old)
	now, _ := dnsIndex(host, ep, m)
	var ops []Op
	for k := range was {
		if _, ok := now[k]; !ok {
			ops = append(ops, Delete(k))
		}
	}
	for k, v := range now {
		if w, ok := was[k]; !ok || w != v {
			ops = append(ops, Put(k, v))
		}
	}
	return ops
}

// ErrMetaBusy reports that an endpoint's metadata kept changing under a
// writer (WriteEndpointMeta); the caller retries later.
var ErrMetaBusy = errors.New("endpoint metadata keeps changing")

// WriteEndpointMeta writes (m) or deletes (nil) the metadata of endpoint
// ep of host, with its name index and its selection index key (selindex.go:
// written when selected, deleted otherwise) in the same transaction,
// together with extra, if every cmp holds. It reads the current metadata first (the
// index keys to delete follow from it) and the write holds only if that
// record is still as read; a concurrent writer makes it read again. It
// reports whether cmps held.
func WriteEndpointMeta(ctx context.Context, s *Store, host, ep string, cmps []Cmp, m *EndpointMeta, selected bool, extra ...Op) (bool, error) {
	key := EndpointMetaKey(host, ep)
	for range 5 {
		old, rev, err := readMeta(ctx, s, key)
		if err != nil {
			return false, err
		}
		ops := make([]Op, 0, 5+len(extra))
		if m != nil {
			ops = append(ops, Put(key, m))
		} else {
			ops = append(ops, Delete(key))
		}
		ops = append(ops, selectedOps(SelectedEndpointKey(host, ep), m, selected))
		ops = append(append(ops, DNSIndexOps(host, ep, old, m)...), extra...)
		ok, _, err := s.Txn(ctx, append(append([]Cmp{}, cmps...), ModRevIs(key, rev)), ops)
		if err != nil || ok {
			return ok, err
		}
		if _, now, err := readMeta(ctx, s, key); err != nil || now == rev {
			return false, err // the caller's conditions failed
		}
	}
	return false, fmt.Errorf("write metadata of endpoint %s of host %s: %w", ep, host, ErrMetaBusy)
}

// readMeta reads a metadata record: nil and 0 when absent, nil and its
// revision when undecodable (its index keys, if any, cannot be known).
func readMeta(ctx context.Context, s *Store, key string) (*EndpointMeta, int64, error) {
	kv, err := s.GetKV(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var m EndpointMeta
	if kv.Decode(&m) != nil {
		return nil, kv.ModRev, nil
	}
	return &m, kv.ModRev, nil
}

// maxIndexOps keeps IndexHostNames' transactions within etcd's default of
// 128 operations.
const maxIndexOps = 100

// IndexHostNames writes the name index of every endpoint metadata record
// of host (the records a podnetd without the index wrote). Each write
// holds only if its record is unchanged (a batch that does not is done
// again record by record, from what is there then). It returns how many
// index keys it wrote. A podnetd calls it before it announces
// MetaLayoutNames.
func IndexHostNames(ctx context.Context, s *Store, host string) (int, error) {
	kvs, _, err := s.List(ctx, EndpointMetaPrefix(host))
	if err != nil {
		return 0, fmt.Errorf("index the names of host %s: %w", host, err)
	}
	type rec struct {
		ep  string
		cmp Cmp
		idx map[string]DNSName
	}
	written := 0
	var batch []rec
	nops := 0
	flush := func() error {
		var cmps []Cmp
		var ops []Op
		for _, r := range batch {
			cmps = append(cmps, r.cmp)
			for k, v := range r.idx {
				ops = append(ops, Put(k, v))
			}
		}
		defer func() { batch, nops = nil, 0 }()
		if len(ops) == 0 {
			return nil
		}
		ok, _, err := s.Txn(ctx, cmps, ops)
		if err != nil {
			return err
		}
		if ok {
			written += len(ops)
			return nil
		}
		for _, r := range batch {
			n, err := indexOne(ctx, s, host, r.ep)
			if err != nil {
				return err
			}
			written += n
		}
		return nil
	}
	for _, kv := range kvs {
		h, ep, ok := SplitHostKey(kv.Key, EndpointMetaPrefix(""))
		if !ok || h != host {
			continue
		}
		var m EndpointMeta
		if kv.Decode(&m) != nil {
			continue
		}
		idx, _ := dnsIndex(host, ep, &m)
		if nops+len(idx) > maxIndexOps {
			if err := flush(); err != nil {
				return written, fmt.Errorf("index the names of host %s: %w", host, err)
			}
		}
		batch = append(batch, rec{ep, ModRevIs(kv.Key, kv.ModRev), idx})
		nops += len(idx)
	}
	if err := flush(); err != nil {
		return written, fmt.Errorf("index the names of host %s: %w", host, err)
	}
	return written, nil
}

// indexOne writes the name index of one endpoint as its record now is.
func indexOne(ctx context.Context, s *Store, host, ep string) (int, error) {
	key := EndpointMetaKey(host, ep)
	for range 5 {
		m, rev, err := readMeta(ctx, s, key)
		if err != nil || m == nil {
			return 0, err
		}
		idx, _ := dnsIndex(host, ep, m)
		ops := make([]Op, 0, len(idx))
		for k, v := range idx {
			ops = append(ops, Put(k, v))
		}
		ok, _, err := s.Txn(ctx, []Cmp{ModRevIs(key, rev)}, ops)
		if err != nil || ok {
			return len(ops), err
		}
	}
	return 0, fmt.Errorf("endpoint %s: %w", ep, ErrMetaBusy)
}

// DeleteHostNames deletes the name index of every endpoint metadata record
// of host (a host removed from the cluster), in batches.
func DeleteHostNames(ctx context.Context, s *Store, host string) error {
	kvs, _, err := s.List(ctx, EndpointMetaPrefix(host))
	if err != nil {
		return fmt.Errorf("delete the names of host %s: %w", host, err)
	}
	var ops []Op
	for i, kv := range kvs {
		h, ep, ok := SplitHostKey(kv.Key, EndpointMetaPrefix(""))
		var m EndpointMeta
		if ok && h == host && kv.Decode(&m) == nil {
			ops = append(ops, DNSIndexOps(host, ep, &m, nil)...)
		}
		if len(ops) > maxIndexOps-10 || i == len(kvs)-1 && len(ops) > 0 {
			if _, _, err := s.Txn(ctx, nil, ops); err != nil {
				return fmt.Errorf("delete the names of host %s: %w", host, err)
			}
			ops = nil
		}
	}
	return nil
}
