package store

import (
	"bytes"
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
//
// A transaction retried after an attempt whose outcome is unknown (the
// leader died while it was in flight) may find its own earlier write:
// its conditions then fail although it was applied. In that case Txn reads
// the keys back and reports success when they hold exactly what this
// transaction wrote, all at one revision — so Create never reports
// ErrExists for a key it created itself.
func (s *Store) Txn(ctx context.Context, cmps []Cmp, ops []Op) (bool, int64, error) {
	conds := make([]clientv3.Cmp, 0, len(cmps))
	for _, c := range cmps {
		conds = append(conds, s.cmp(c))
	}
	then := make([]clientv3.Op, 0, len(ops))
	writes := make([]write, 0, len(ops))
	for _, o := range ops {
		w, err := s.write(o)
		if err != nil {
			return false, 0, err
		}
		writes = append(writes, w)
		then = append(then, w.op())
	}
	key := ""
	if len(ops) > 0 {
		key = ops[0].key
	} else if len(cmps) > 0 {
		key = cmps[0].key
	}
	var resp *clientv3.TxnResponse
	maybeApplied, err := s.call(ctx, "txn", key, func(c context.Context) (err error) {
		resp, err = s.cli.Txn(c).If(conds...).Then(then...).Commit()
		return err
	})
	if err != nil {
		return false, 0, err
	}
	if !resp.Succeeded && maybeApplied && len(writes) > 0 {
		if rev, ok := s.applied(ctx, key, writes); ok {
			s.log.Debug("etcd txn found applied by an earlier attempt", "key", key, "revision", rev)
			return true, rev, nil
		}
	}
	return resp.Succeeded, resp.Header.Revision, nil
}

func (s *Store) cmp(c Cmp) clientv3.Cmp {
	k := s.abs(c.key)
	switch c.kind {
	case cmpAbsent:
		return clientv3.Compare(clientv3.Version(k), "=", 0)
	case cmpPresent:
		return clientv3.Compare(clientv3.Version(k), ">", 0)
	case cmpModRev:
		return clientv3.Compare(clientv3.ModRevision(k), "=", c.rev)
	case cmpPrefixUnchanged:
		return clientv3.Compare(clientv3.ModRevision(k), "<", c.rev+1).WithPrefix()
	case cmpPrefixEmpty:
		return clientv3.Compare(clientv3.Version(k), "=", 0).WithPrefix()
	default: // cmpRangeUnchanged
		return clientv3.Compare(clientv3.ModRevision(k), "<", c.rev+1).WithRange(s.abs(c.end))
	}
}

// write is one Op with its key made absolute and its value encoded.
type write struct {
	key         string
	value       []byte
	del, prefix bool
	lease       clientv3.LeaseID
}

func (s *Store) write(o Op) (write, error) {
	w := write{key: s.abs(o.key), del: o.del, prefix: o.prefix, lease: clientv3.LeaseID(o.lease)}
	if o.del {
		return w, nil
	}
	w.value = o.raw
	if w.value == nil {
		b, err := json.Marshal(o.value)
		if err != nil {
			return w, fmt.Errorf("encode %q: %w", o.key, err)
		}
		w.value = b
	}
	return w, nil
}

func (w write) op() clientv3.Op {
	switch {
	case w.del && w.prefix:
		return clientv3.OpDelete(w.key, clientv3.WithPrefix())
	case w.del:
		return clientv3.OpDelete(w.key)
	case w.lease != 0:
		return clientv3.OpPut(w.key, string(w.value), clientv3.WithLease(w.lease))
	default:
		return clientv3.OpPut(w.key, string(w.value))
	}
}

// applied reads the keys of writes at one revision and reports whether
// they are exactly as one transaction of writes left them: every put's key
// holds its value and lease, all with one ModRevision (returned), and
// every deleted key is gone.
func (s *Store) applied(ctx context.Context, key string, writes []write) (int64, bool) {
	reads := make([]clientv3.Op, 0, len(writes))
	for _, w := range writes {
		if w.prefix {
			reads = append(reads, clientv3.OpGet(w.key, clientv3.WithPrefix(), clientv3.WithCountOnly()))
		} else {
			reads = append(reads, clientv3.OpGet(w.key))
		}
	}
	var resp *clientv3.TxnResponse
	if _, err := s.call(ctx, "read back", key, func(c context.Context) (err error) {
		resp, err = s.cli.Txn(c).Then(reads...).Commit()
		return err
	}); err != nil {
		return 0, false
	}
	rev := resp.Header.Revision
	putRev := int64(0)
	for i, w := range writes {
		r := resp.Responses[i].GetResponseRange()
		if w.del {
			if r.Count != 0 {
				return 0, false
			}
			continue
		}
		if len(r.Kvs) != 1 || !bytes.Equal(r.Kvs[0].Value, w.value) || clientv3.LeaseID(r.Kvs[0].Lease) != w.lease ||
			(putRev != 0 && r.Kvs[0].ModRevision != putRev) {
			return 0, false
		}
		putRev = r.Kvs[0].ModRevision
	}
	if putRev != 0 {
		rev = putRev
	}
	return rev, true
}
