package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// The selection index: a copy of the metadata of every container that a
// service or a network policy selects, written by the container's own host
// in the same transaction as the metadata. Hosts follow sel/ (what every
// host's proxy and policy agents need) instead of epmeta/ and ctrmeta/
// (every container of the cluster): a container nothing selects sends
// nothing to other hosts.
//
//	sel/ep/<host>/<endpoint>    EndpointMeta   a selected endpoint's metadata (as epmeta/)
//	sel/ctr/<host>/<container>  ContainerMeta  a selected host- or container-mode container's (as ctrmeta/)
//
// Which containers are selected is decided by the owner from the services
// and policies it follows (package catalog, Catalog.Selects); when those
// change, ReselectHost brings the host's keys in line. A writer that does
// not know the selectors writes the key (selected = true): selecting too
// much costs only fan-out, selecting too little would hide an endpoint.
const (
	SelectedEndpoints  = "sel/ep/"
	SelectedContainers = "sel/ctr/"
)

// SelectedEndpointKey is the selection index key of endpoint ep of host.
func SelectedEndpointKey(host, ep string) string { return SelectedEndpoints + host + "/" + ep }

// SelectedContainerKey is the selection index key of container id of host.
func SelectedContainerKey(host, id string) string { return SelectedContainers + host + "/" + id }

// SelectedEndpointsOf lists host's selected endpoints.
func SelectedEndpointsOf(host string) string { return SelectedEndpoints + host + "/" }

// SelectedContainersOf lists host's selected containers.
func SelectedContainersOf(host string) string { return SelectedContainers + host + "/" }

// MetaKeyOfSelected maps a selection index key to the metadata key it
// copies (epmeta/<host>/<ep> or ctrmeta/<host>/<id>); false for anything
// else.
func MetaKeyOfSelected(key string) (string, bool) {
	if rest, ok := strings.CutPrefix(key, SelectedEndpoints); ok {
		return EndpointMetaPrefix("") + rest, true
	}
	if rest, ok := strings.CutPrefix(key, SelectedContainers); ok {
		return ContainerMetaPrefix("") + rest, true
	}
	return "", false
}

// selectedOps writes (selected) or deletes the selection key of a
// metadata record; a delete of an absent key changes nothing and sends
// nothing to watchers.
func selectedOps(key string, v any, selected bool) Op {
	if selected && v != nil {
		return Put(key, v)
	}
	return Delete(key)
}

// WriteContainerMeta writes (m) or deletes (nil) the metadata of a host-
// or container-mode container id of host, with its selection index key.
func WriteContainerMeta(ctx context.Context, s *Store, host, id string, m *ContainerMeta, selected bool) error {
	key := ContainerMetaKey(host, id)
	ops := []Op{Delete(key), Delete(SelectedContainerKey(host, id))}
	if m != nil {
		ops = []Op{Put(key, m), selectedOps(SelectedContainerKey(host, id), m, selected)}
	}
	_, _, err := s.Txn(ctx, nil, ops)
	return err
}

// Selection reports whether a service or policy selects a container with
// these labels (Catalog.Selects).
type Selection func(labels map[string]string) bool

// ReselectResult says what ReselectHost changed.
type ReselectResult struct {
	Checked, Written, Deleted int
}

// ReselectHost brings host's selection index in line with its metadata
// and selects: a key for every record selects takes (and for the
// endpoints of a container whose stack a selected --net container:X
// container shares: it is reached at X's address), none for the others
// and none without a record. Each fix holds only if the record is still
// as read (a writer in between wrote the key itself). Run it at start and
// whenever the services' and policies' selectors change.
func ReselectHost(ctx context.Context, s *Store, host string, selects Selection) (ReselectResult, error) {
	var res ReselectResult
	eps, _, err := s.List(ctx, EndpointMetaPrefix(host))
	if err != nil {
		return res, fmt.Errorf("reselect the containers of host %s: %w", host, err)
	}
	ctrs, _, err := s.List(ctx, ContainerMetaPrefix(host))
	if err != nil {
		return res, fmt.Errorf("reselect the containers of host %s: %w", host, err)
	}
	parents := map[string]bool{}
	for _, kv := range ctrs {
		var m ContainerMeta
		if kv.Decode(&m) == nil && m.Parent != "" && selects(m.Labels) {
			parents[m.Parent] = true
		}
	}
	for _, kind := range []struct {
		meta, sel string
		kvs       []KV
	}{
		{EndpointMetaPrefix(host), SelectedEndpointsOf(host), eps},
		{ContainerMetaPrefix(host), SelectedContainersOf(host), ctrs},
	} {
		if err := reselect(ctx, s, kind.meta, kind.sel, kind.kvs, selects, parents, &res); err != nil {
			return res, fmt.Errorf("reselect the containers of host %s: %w", host, err)
		}
	}
	return res, nil
}

// reselect fixes the selection keys under sel of the records metas
// (listed under meta).
func reselect(ctx context.Context, s *Store, meta, sel string, metas []KV, selects Selection, parents map[string]bool, res *ReselectResult) error {
	sels, _, err := s.List(ctx, sel)
	if err != nil {
		return err
	}
	have := make(map[string]KV, len(sels))
	for _, kv := range sels {
		have[strings.TrimPrefix(kv.Key, sel)] = kv
	}
	var cmps []Cmp
	var ops []Op
	var written, deleted int
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		// Each fix is conditioned on its record; a batch that does not
		// hold is left to the next run (a writer changed a record, and
		// wrote its key with it).
		ok, _, err := s.Txn(ctx, cmps, ops)
		if ok {
			res.Written += written
			res.Deleted += deleted
		}
		cmps, ops, written, deleted = nil, nil, 0, 0
		return err
	}
	for _, kv := range metas {
		id := strings.TrimPrefix(kv.Key, meta)
		res.Checked++
		var rec struct {
			Container string            `json:"container"`
			Labels    map[string]string `json:"labels"`
		}
		want := json.Unmarshal(kv.Value, &rec) == nil && (selects(rec.Labels) || parents[rec.Container])
		cur, had := have[id]
		delete(have, id)
		switch {
		case want && (!had || !bytes.Equal(cur.Value, kv.Value)):
			cmps = append(cmps, ModRevIs(kv.Key, kv.ModRev))
			ops = append(ops, PutRaw(sel+id, kv.Value))
			written++
		case !want && had:
			cmps = append(cmps, ModRevIs(kv.Key, kv.ModRev))
			ops = append(ops, Delete(sel+id))
			deleted++
		default:
			continue
		}
		if len(ops) >= maxIndexOps {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	for id := range have { // keys without a record
		cmps = append(cmps, Absent(meta+id))
		ops = append(ops, Delete(sel+id))
		deleted++
		if len(ops) >= maxIndexOps {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
