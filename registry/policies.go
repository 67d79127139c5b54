package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/store"
)

// applyPolicy creates want, or updates the policy of that name in place
// (one put conditioned on the record's revision).
func (r *Registry) applyPolicy(ctx context.Context, want store.NetworkPolicy) (string, error) {
	for range maxTxnAttempts {
		var old store.NetworkPolicy
		rev, err := r.st.Get(ctx, store.PolicyKey(want.Name), &old)
		switch {
		case errors.Is(err, store.ErrNotFound):
			want.Created = time.Now().UTC()
			want.Updated = want.Created
			ok, _, err := r.st.Txn(ctx, []store.Cmp{store.Absent(store.PolicyKey(want.Name))},
				[]store.Op{store.Put(store.PolicyKey(want.Name), want)})
			if err != nil {
				return "", fmt.Errorf("create network policy %s: %w", want.Name, err)
			}
			if ok {
				r.log.Info("network policy created", "policy", want.Name, "types", want.PolicyTypes)
				return admin.ActionCreated, nil
			}
			continue // created concurrently: update it instead
		case err != nil:
			return "", fmt.Errorf("read network policy %s: %w", want.Name, err)
		case samePolicy(old, want):
			return admin.ActionUnchanged, nil
		}
		want.Created, want.Updated = old.Created, time.Now().UTC()
		ok, _, err := r.st.Txn(ctx, []store.Cmp{store.ModRevIs(store.PolicyKey(want.Name), rev)},
			[]store.Op{store.Put(store.PolicyKey(want.Name), want)})
		if err != nil {
			return "", fmt.Errorf("update network policy %s: %w", want.Name, err)
		}
		if ok {
			r.log.Info("network policy updated", "policy", want.Name, "types", want.PolicyTypes)
			return admin.ActionConfigured, nil
		}
	}
	return "", fmt.Errorf("apply network policy %s: it keeps changing concurrently; retry", want.Name)
}

// RemovePolicy deletes a network policy; found is false when there was
// none of that name (not an error).
func (r *Registry) RemovePolicy(ctx context.Context, name string) (bool, error) {
	if err := r.probe(ctx); err != nil {
		return false, err
	}
	found, _, err := r.st.Txn(ctx, []store.Cmp{store.Present(store.PolicyKey(name))},
		[]store.Op{store.Delete(store.PolicyKey(name))})
	if err != nil {
		return false, fmt.Errorf("remove network policy %s: %w", name, err)
	}
	if found {
		r.log.Info("network policy removed", "policy", name)
	}
	return found, nil
}
