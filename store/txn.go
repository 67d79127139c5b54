package store

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cmp is one condition of a transaction.
type Cmp struct {
	key    string
	end    string // exclusive end of a key range (cmpRangeUnchanged)
	prefix bool
	kind   cmpKind
	rev    int64
}

type cmpKind int

const (
	cmpAbsent cmpKind = iota
	cmpPresent
	cmpModRev
	cmpPrefixUnchanged
	cmpPrefixEmpty
	cmpRangeUnchanged
)

// Absent holds when key does not exist.
func Absent(key string) Cmp { return Cmp{key: key, kind: cmpAbsent} }

// Present holds when key exists.
func Present(key string) Cmp { return Cmp{key: key, kind: cmpPresent} }

// ModRevIs holds when key's ModRevision equals rev.
func ModRevIs(key string, rev int64) Cmp { return Cmp{key: key, kind: cmpModRev, rev: rev} }

// PrefixUnchangedSince holds when no key under prefix was created or
// modified after revision rev (deletions are not seen: etcd compares only
// existing keys).
func PrefixUnchangedSince(prefix string, rev int64) Cmp {
	return Cmp{key: prefix, prefix: true, kind: cmpPrefixUnchanged, rev: rev}
}

// PrefixEmpty holds when no key exists under prefix.
func PrefixEmpty(prefix string) Cmp {
	return Cmp{key: prefix, prefix: true, kind: cmpPrefixEmpty}
}

// RangeUnchangedSince holds when no key in [from, to) was created or
// modified after revision rev; with rev 0 it holds only when the range is
// empty. Like PrefixUnchangedSince it does not see deletions. It lets a
// caller act on "these keys, exactly as I listed them" when the keys are a
// range but not a prefix (an address block of a /26 is not a hex prefix).
func RangeUnchangedSince(from, to string, rev int64) Cmp {
	return Cmp{key: from, end: to, kind: cmpRangeUnchanged, rev: rev}
}

// Op is one write of a transaction.
type Op struct {
	key    string
	value  any
	raw    []byte
	del    bool
	prefix bool
	lease  int64
}

// Put writes v (JSON-encoded) at key.
func Put(key string, v any) Op { return Op{key: key, value: v} }

// PutRaw writes raw bytes at key.
func PutRaw(key string, b []byte) Op { return Op{key: key, raw: b} }

// Delete removes key.
func Delete(key string) Op { return Op{key: key, del: true} }

// DeletePrefix removes every key under prefix.
func DeletePrefix(prefix string) Op { return Op{key: prefix, del: true, prefix: true} }

// Txn runs ops atomically if every cmp holds. It reports whether the
// conditions held and the revision of the transaction.
func (s *Store) Txn(ctx context.Context, cmps []Cmp, ops []Op) (bool, int64, error) {
	conds := make([]clientv3.Cmp, 0, len(cmps))
	for _, c := range cmps {
		k := s.abs(c.key)
		var cmp clientv3.Cmp
		switch c.kind {
		case cmpAbsent:
			cmp = clientv3.Compare(clientv3.Version(k), "=", 0)
		case cmpPresent:
			cmp = clientv3.Compare(clientv3.Version(k), ">", 0)
		case cmpModRev:
			cmp = clientv3.Compare(clientv3.ModRevision(k), "=", c.rev)
		case cmpPrefixUnchanged:
			cmp = clientv3.Compare(clientv3.ModRevision(k), "<", c.rev+1).WithPrefix()
		case cmpPrefixEmpty:
			cmp = clientv3.Compare(clientv3.Version(k), "=", 0).WithPrefix()
		case cmpRangeUnchanged:
			cmp = clientv3.Compare(clientv3.ModRevision(k), "<", c.rev+1).WithRange(s.abs(c.end))
		}
		conds = append(conds, cmp)
	}
	then := make([]clientv3.Op, 0, len(ops))
	for _, o := range ops {
		k := s.abs(o.key)
		switch {
		case o.del && o.prefix:
			then = append(then, clientv3.OpDelete(k, clientv3.WithPrefix()))
		case o.del:
			then = append(then, clientv3.OpDelete(k))
		default:
			b := o.raw
			if b == nil {
				var err error
				if b, err = json.Marshal(o.value); err != nil {
					return false, 0, fmt.Errorf("encode %q: %w", o.key, err)
				}
			}
			var opts []clientv3.OpOption
			if o.lease != 0 {
				opts = append(opts, clientv3.WithLease(clientv3.LeaseID(o.lease)))
			}
			then = append(then, clientv3.OpPut(k, string(b), opts...))
		}
	}
	c, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(c).If(conds...).Then(then...).Commit()
	if err != nil {
		key := ""
		if len(ops) > 0 {
			key = ops[0].key
		} else if len(cmps) > 0 {
			key = cmps[0].key
		}
		return false, 0, s.wrap("txn", key, err)
	}
	return resp.Succeeded, resp.Header.Revision, nil
}
