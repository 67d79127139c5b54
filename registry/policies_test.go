package registry

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

// Policies go through apply -f beside services: created, unchanged,
// configured, deleted; a bad object refuses the whole file.
func TestRegistryPolicies(t *testing.T) {
	st := storetest.New(t)
	r := newRegistry(t, st)
	ctx := context.Background()
	file := `
- name: db
  selector: {app: db}
  ports: [{port: 5432}]
- kind: NetworkPolicy
  name: db
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]
`
	res, err := r.ApplyFile(ctx, "f.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Kind != admin.KindService || res[1].Kind != admin.KindNetworkPolicy ||
		res[0].Action != admin.ActionCreated || res[1].Action != admin.ActionCreated {
		t.Fatalf("apply: %+v", res)
	}
	var rec store.NetworkPolicy
	if _, err := st.Get(ctx, store.PolicyKey("db"), &rec); err != nil || rec.Created.IsZero() || rec.PolicyTypes[0] != store.PolicyIngress {
		t.Fatalf("record %+v, %v", rec, err)
	}
	res, _ = r.ApplyFile(ctx, "f.yaml", []byte(file))
	if res[1].Action != admin.ActionUnchanged {
		t.Fatalf("second apply: %+v", res)
	}
	res, _ = r.ApplyFile(ctx, "f.yaml", []byte(strings.Replace(file, "port: 5432}]}]", "port: 5433}]}]", 1)))
	if res[1].Action != admin.ActionConfigured {
		t.Fatalf("changed apply: %+v", res)
	}
	var upd store.NetworkPolicy
	if _, err := st.Get(ctx, store.PolicyKey("db"), &upd); err != nil || !upd.Created.Equal(rec.Created) || !upd.Updated.After(rec.Updated) {
		t.Fatalf("updated record %+v (was %+v)", upd, rec)
	}
	// A bad policy: nothing of the file is written.
	bad := file + "- kind: NetworkPolicy\n  name: other\n  podSelector: {}\n  ingress: [{ports: [{port: 0}]}]\n"
	if _, err := r.ApplyFile(ctx, "f.yaml", []byte(bad)); err == nil || !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "line 9") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := st.Get(ctx, store.PolicyKey("other"), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused file wrote a policy: %v", err)
	}
	// Views: the view lists what the policy selects.
	storetest.Put(t, st, store.NetworkKey("h1", "n1"), store.Network{ID: "n1", Host: "h1", Mode: "bridge"})
	putMeta(t, st, "h1", store.EndpointMeta{Endpoint: "e1", Network: "n1", Container: "c1",
		Name: "db-1", Labels: map[string]string{"app": "db"}, IPv4: netip.MustParseAddr("10.0.0.2"), Updated: time.Now()})
	// A macvlan container is listed as not enforced, saying why.
	storetest.Put(t, st, store.NetworkKey("h2", "n2"), store.Network{ID: "n2", Host: "h2", Mode: "macvlan"})
	putMeta(t, st, "h2", store.EndpointMeta{Endpoint: "e2", Network: "n2", Container: "c2",
		Name: "db-2", Labels: map[string]string{"app": "db"}, IPv4: netip.MustParseAddr("192.168.1.9"), Updated: time.Now()})
	v, err := r.Policy(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	sel := v.Status.Selected
	if len(sel) != 2 || !sel[0].Enforced || sel[0].Addresses[0] != "10.0.0.2" || sel[1].Enforced ||
		!strings.Contains(sel[1].Reason, "macvlan") {
		t.Fatalf("view: %+v", v.Status)
	}
	// policy check, on the same model the data plane is built from.
	vd, err := r.CheckPolicy(ctx, admin.PolicyCheck{From: "192.0.2.1", To: "db-1", Port: "5433/tcp"})
	if err != nil || vd.Allowed || !strings.Contains(vd.Ingress.Reason, "isolated for ingress by db") {
		t.Fatalf("check from outside: %+v %v", vd, err)
	}
	vd, err = r.CheckPolicy(ctx, admin.PolicyCheck{From: "db-1", To: "db-2", Port: "1"})
	if err != nil || !vd.Allowed || !strings.Contains(vd.To, "not enforced") {
		t.Fatalf("check to a macvlan container: %+v %v", vd, err)
	}
	if _, err := r.CheckPolicy(ctx, admin.PolicyCheck{From: "nope", To: "db-1", Port: "80"}); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("check from an unknown container: %v", err)
	}
	res, err = r.DeleteFile(ctx, "f.yaml", []byte(file))
	if err != nil || res[0].Action != admin.ActionDeleted || res[1].Action != admin.ActionDeleted {
		t.Fatalf("delete: %+v %v", res, err)
	}
	if _, err := r.Policy(ctx, "db"); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("get after delete: %v", err)
	}
}

// putMeta writes an endpoint's metadata as its podnetd does (selected:
// the selection index too).
func putMeta(t *testing.T, st *store.Store, host string, m store.EndpointMeta) {
	t.Helper()
	if _, err := store.WriteEndpointMeta(context.Background(), st, host, m.Endpoint, nil, &m, true); err != nil {
		t.Fatal(err)
	}
}
