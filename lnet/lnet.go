package lnet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// FirstAutoVNI is where VNI allocation starts: below it is left to
// operators, who may pass -o podnet.vni=N explicitly.
const FirstAutoVNI = 4096

// Request is what a host (or an operator) asks for. Zero values mean
// "not given": they are inherited from an existing definition or defaulted.
type Request struct {
	Pool    netip.Prefix // the first subnet: the key
	Subnets []netip.Prefix
	Mode    string
	MTU     int
	VNI     int
	// NeedVNI allocates a VNI when the definition is new and VNI is 0.
	NeedVNI bool
	// Options are the options given that every host must share
	// (netspec.Options.Shared).
	Options map[string]string
	// DefaultMTU is used when MTU is 0 and the definition is new.
	DefaultMTU int
	// Defaults are the values of options the request left out, recorded
	// in a new definition so that a later host giving a default
	// explicitly agrees with it.
	Defaults map[string]string
}

// Claim returns the definition for r.Pool, creating it from r if it does
// not exist, or checking r against it and filling what r left out. It
// reports whether this call created it (so a failed create can Release it).
func Claim(ctx context.Context, st *store.Store, r Request) (store.LogicalNetwork, bool, error) {
	key := store.LNetKey(r.Pool)
	for attempt := 0; attempt < 20; attempt++ {
		var have store.LogicalNetwork
		_, err := st.Get(ctx, key, &have)
		if err == nil {
			return check(have, r)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.LogicalNetwork{}, false, fmt.Errorf("read network definition for %s: %w", r.Pool, err)
		}
		opts := maps.Clone(r.Defaults)
		if opts == nil {
			opts = map[string]string{}
		}
		maps.Copy(opts, r.Options)
		def := store.LogicalNetwork{Subnets: r.Subnets, Mode: r.Mode, MTU: r.MTU, VNI: r.VNI,
			Options: nonEmpty(opts), Created: time.Now().UTC()}
		if def.MTU == 0 {
			def.MTU = r.DefaultMTU
		}
		ok, err := create(ctx, st, key, &def, r)
		if err != nil {
			return store.LogicalNetwork{}, false, err
		}
		if ok {
			return def, true, nil
		}
		// Lost a race (the definition or the VNI appeared): look again.
	}
	return store.LogicalNetwork{}, false, fmt.Errorf("network definition for %s: too much contention, retry", r.Pool)
}

// create writes def (allocating a VNI if needed) if both keys are absent.
func create(ctx context.Context, st *store.Store, key string, def *store.LogicalNetwork, r Request) (bool, error) {
	cmps := []store.Cmp{store.Absent(key)}
	ops := []store.Op{}
	if def.VNI == 0 && r.NeedVNI {
		vni, err := freeVNI(ctx, st)
		if err != nil {
			return false, err
		}
		def.VNI = vni
	}
	if def.VNI != 0 {
		if err := checkVNIFree(ctx, st, def.VNI, r.Pool, r.VNI != 0); err != nil {
			return false, err
		}
		cmps = append(cmps, store.Absent(store.VNIKey(def.VNI)))
		ops = append(ops, store.Put(store.VNIKey(def.VNI), store.VNIClaim{Pool: r.Pool}))
	}
	ops = append(ops, store.Put(key, def))
	ok, _, err := st.Txn(ctx, cmps, ops)
	if err != nil {
		return false, fmt.Errorf("record network definition for %s: %w", r.Pool, err)
	}
	return ok, nil
}

// checkVNIFree refuses an explicitly requested VNI held by another network.
func checkVNIFree(ctx context.Context, st *store.Store, vni int, pool netip.Prefix, explicit bool) error {
	if err := netspec.CheckVNI(vni); err != nil {
		return err
	}
	var c store.VNIClaim
	_, err := st.Get(ctx, store.VNIKey(vni), &c)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Pool != pool && explicit {
		return fmt.Errorf("VNI %d is already used by the network on subnet %s: choose another -o podnet.vni", vni, c.Pool)
	}
	return nil
}

// freeVNI returns the lowest unclaimed VNI from FirstAutoVNI on.
func freeVNI(ctx context.Context, st *store.Store) (int, error) {
	kvs, _, err := st.List(ctx, store.VNIsPrefix)
	if err != nil {
		return 0, fmt.Errorf("list VNIs: %w", err)
	}
	taken := map[int]bool{}
	for _, kv := range kvs {
		if n, err := strconv.Atoi(strings.TrimPrefix(kv.Key, store.VNIsPrefix)); err == nil {
			taken[n] = true
		}
	}
	for v := FirstAutoVNI; v <= netspec.MaxVNI; v++ {
		if !taken[v] {
			return v, nil
		}
	}
	return 0, errors.New("no free VNI left")
}

// check compares r with the existing definition and fills in what r left
// out.
func check(have store.LogicalNetwork, r Request) (store.LogicalNetwork, bool, error) {
	var diffs []string
	if have.Deleting {
		return have, false, fmt.Errorf("network %q on subnet %s is being removed (podnetctl network rm); wait for it to finish", have.Name, r.Pool)
	}
	if r.Mode != have.Mode {
		diffs = append(diffs, "mode "+r.Mode)
	}
	if r.MTU != 0 && r.MTU != have.MTU {
		diffs = append(diffs, fmt.Sprintf("mtu %d", r.MTU))
	}
	if r.VNI != 0 && r.VNI != have.VNI {
		diffs = append(diffs, fmt.Sprintf("vni %d", r.VNI))
	}
	if len(r.Subnets) > 0 && !slices.Equal(sorted(r.Subnets), sorted(have.Subnets)) {
		diffs = append(diffs, "subnets "+netspec.JoinPrefixes(r.Subnets, ","))
	}
	for k, v := range r.Options {
		if k == "podnet.vni" {
			continue // compared as VNI
		}
		if hv, ok := have.Options[k]; ok && hv != v || !ok {
			diffs = append(diffs, k+"="+v)
		}
	}
	if len(diffs) > 0 {
		return have, false, fmt.Errorf("subnet %s is already defined in the cluster as %s; this request has %s: create the network with the same options on every host (or leave them out to inherit them)",
			r.Pool, Describe(have), strings.Join(diffs, ", "))
	}
	return have, false, nil
}

// Describe renders a definition for error messages.
func Describe(l store.LogicalNetwork) string {
	s := fmt.Sprintf("mode %s, mtu %d, subnets %s", l.Mode, l.MTU, netspec.JoinPrefixes(l.Subnets, ","))
	if l.Name != "" {
		s = fmt.Sprintf("network %q, ", l.Name) + s
	}
	if l.VNI != 0 {
		s += fmt.Sprintf(", vni %d", l.VNI)
	}
	for _, k := range slices.Sorted(maps.Keys(l.Options)) {
		s += fmt.Sprintf(", %s=%s", k, l.Options[k])
	}
	return s
}

// Release deletes the definition of pool (and its VNI claim) when no
// Docker network on any host uses the pool any more and it is not a named
// definition still wanted. Absence is fine.
func Release(ctx context.Context, st *store.Store, pool netip.Prefix) error {
	var l store.LogicalNetwork
	rev, err := st.Get(ctx, store.LNetKey(pool), &l)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Name != "" && !l.Deleting {
		return nil
	}
	used, err := InUse(ctx, st, pool)
	if err != nil || used {
		return err
	}
	ops := []store.Op{store.Delete(store.LNetKey(pool))}
	if l.VNI != 0 {
		ops = append(ops, store.Delete(store.VNIKey(l.VNI)))
	}
	if _, _, err := st.Txn(ctx, []store.Cmp{store.ModRevIs(store.LNetKey(pool), rev)}, ops); err != nil {
		return err
	}
	return nil
}

// InUse reports whether any host has a Docker network on pool.
func InUse(ctx context.Context, st *store.Store, pool netip.Prefix) (bool, error) {
	hosts, err := HostsUsing(ctx, st, pool)
	return len(hosts) > 0, err
}

// HostsUsing returns, per host, the Docker network IDs using pool as their
// first subnet.
func HostsUsing(ctx context.Context, st *store.Store, pool netip.Prefix) (map[string][]string, error) {
	kvs, _, err := st.List(ctx, store.NetworksPrefix(""))
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, kv := range kvs {
		var n store.Network
		if err := kv.Decode(&n); err != nil {
			// Skipping it could release a definition a host still uses.
			return nil, err
		}
		if FirstPool(&n) == pool {
			out[n.Host] = append(out[n.Host], n.ID)
		}
	}
	return out, nil
}

// FirstPool is the pool a network's definition is keyed by (KeyPool of
// its subnets).
func FirstPool(n *store.Network) netip.Prefix { return KeyPool(n.Pools()) }

// KeyPool is the subnet a definition of subnets is keyed by: the lowest
// IPv4 subnet, else the lowest IPv6 subnet. Lowest, not first: Docker's
// CLI orders several --subnet flags differently from run to run.
func KeyPool(subnets []netip.Prefix) netip.Prefix {
	var best netip.Prefix
	for _, p := range subnets {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		switch {
		case !best.IsValid(), best.Addr().Is6() && p.Addr().Is4():
			best = p
		case best.Addr().Is4() == p.Addr().Is4() && p.Addr().Less(best.Addr()):
			best = p
		}
	}
	return best
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func sorted(s []netip.Prefix) []netip.Prefix {
	c := slices.Clone(s)
	slices.SortFunc(c, netip.Prefix.Compare)
	return c
}

// Define creates a named definition (podnetctl network create). It fails
// if the subnet is already defined, naming the existing definition.
func Define(ctx context.Context, st *store.Store, def store.LogicalNetwork, pool netip.Prefix, needVNI bool) (store.LogicalNetwork, error) {
	for attempt := 0; attempt < 20; attempt++ {
		var have store.LogicalNetwork
		_, err := st.Get(ctx, store.LNetKey(pool), &have)
		if err == nil {
			return have, fmt.Errorf("subnet %s is already defined in the cluster as %s", pool, Describe(have))
		}
		if !errors.Is(err, store.ErrNotFound) {
			return have, err
		}
		d := def
		ok, err := create(ctx, st, store.LNetKey(pool), &d, Request{Pool: pool, VNI: def.VNI, NeedVNI: needVNI})
		if err != nil {
			return d, err
		}
		if ok {
			return d, nil
		}
	}
	return def, fmt.Errorf("network definition for %s: too much contention, retry", pool)
}
