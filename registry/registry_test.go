package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

func newRegistry(t *testing.T, st *store.Store) *Registry {
	t.Helper()
	return New(Config{Store: st, Range: testRange(t), Host: "h1", Logger: storetest.Logger(t)})
}

func mustFail(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want one containing %q", err, want)
	}
}

func TestRegistryCreateAndRemove(t *testing.T) {
	st := storetest.New(t)
	r := newRegistry(t, st)
	ctx := context.Background()
	spec := webSpec()
	spec.Type = "NodePort"
	s, err := r.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !testRange(t).CIDR.Contains(s.ClusterIP) || s.Ports[0].NodePort < NodePortMin || s.Ports[0].NodePort > NodePortMax {
		t.Fatalf("allocated %s / %d", s.ClusterIP, s.Ports[0].NodePort)
	}
	if _, res := testRange(t).Reserved[s.ClusterIP]; res {
		t.Fatalf("reserved VIP %s handed out", s.ClusterIP)
	}
	// Each claim exists, owned by web.
	var c store.ServiceIPClaim
	if _, err := st.Get(ctx, store.ServiceIPKey(s.ClusterIP), &c); err != nil || c.Service != "web" {
		t.Fatalf("VIP claim: %+v %v", c, err)
	}
	// Refusals: nothing created by any of them.
	before := len(storetest.Keys(t, st, ""))
	_, err = r.Create(ctx, webSpec())
	mustFail(t, err, "service web already exists")
	other := webSpec()
	other.Name, other.ClusterIP = "other", s.ClusterIP.String()
	_, err = r.Create(ctx, other)
	mustFail(t, err, "clusterIP "+s.ClusterIP.String()+" is taken by service web")
	other.ClusterIP, other.Type = "", "NodePort"
	other.Ports[0].NodePort = int(s.Ports[0].NodePort)
	_, err = r.Create(ctx, other)
	mustFail(t, err, fmt.Sprintf("nodePort %d is taken by service web", s.Ports[0].NodePort))
	if !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("a taken NodePort must be the caller's fault: %v", err)
	}
	if n := len(storetest.Keys(t, st, "")); n != before {
		t.Fatalf("refused creates left keys: %d before, %d after", before, n)
	}
	found, err := r.Remove(ctx, "web")
	if err != nil || !found {
		t.Fatalf("remove: %v %v", found, err)
	}
	for _, p := range []string{store.ServicesPrefix, store.ServiceIPsPrefix, store.NodePortsPrefix} {
		if k := storetest.Keys(t, st, p); len(k) != 0 {
			t.Fatalf("left after rm: %v", k)
		}
	}
	if found, err := r.Remove(ctx, "web"); err != nil || found {
		t.Fatalf("second remove: %v %v (absence is no error)", found, err)
	}
	// Released: another service may take the same VIP and NodePort now.
	other.ClusterIP = s.ClusterIP.String()
	if _, err := r.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryExternalIPIsPodAddress(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.PoolKey(netip.MustParsePrefix("10.244.0.0/16")), store.Pool{Subnet: netip.MustParsePrefix("10.244.0.0/16")})
	spec := webSpec()
	spec.ExternalIPs = []string{"10.244.3.3"}
	_, err := newRegistry(t, st).Create(context.Background(), spec)
	mustFail(t, err, "external IP 10.244.3.3 is a pod address (podnet pool 10.244.0.0/16)")
	if k := storetest.Keys(t, st, store.ServicesPrefix); len(k) != 0 {
		t.Fatalf("created: %v", k)
	}
}

// TestRegistryExternalIPNeverList: inside the allow-list still, a host's
// underlay address, its network's own and broadcast addresses and its
// gateway are refused, naming what they are; nothing is created.
func TestRegistryExternalIPNeverList(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.HostKey("h2"), store.Host{Name: "h2", Underlay: netip.MustParseAddr("10.250.0.12"),
		Network: netip.MustParsePrefix("10.250.0.0/24"), Gateway: netip.MustParseAddr("10.250.0.1")})
	r := newRegistry(t, st)
	for addr, want := range map[string]string{
		"10.250.0.12":  "the underlay address of host h2",
		"10.250.0.1":   "the underlay gateway of host h2",
		"10.250.0.0":   "the address of host h2's underlay network 10.250.0.0/24",
		"10.250.0.255": "the broadcast address of host h2's underlay network",
	} {
		spec := webSpec()
		spec.ExternalIPs = []string{addr}
		_, err := r.Create(context.Background(), spec)
		mustFail(t, err, "external IP "+addr+" is "+want)
	}
	spec := webSpec()
	spec.ExternalIPs = []string{"10.250.0.250"}
	if _, err := r.Create(context.Background(), spec); err != nil {
		t.Fatalf("an address of the underlay that is no host's: %v", err)
	}
}

// TestRegistryExternalIPClaims: an external IP's port and protocol belong
// to one service cluster-wide; another port of the same address, or
// another protocol, is free. Removing the owner frees it.
func TestRegistryExternalIPClaims(t *testing.T) {
	st := storetest.New(t)
	r := newRegistry(t, st)
	ctx := context.Background()
	a := webSpec()
	a.ExternalIPs = []string{"192.0.2.50"}
	if _, err := r.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := webSpec()
	b.Name, b.ExternalIPs = "other", []string{"192.0.2.50"}
	_, err := r.Create(ctx, b)
	mustFail(t, err, "service other: external IP 192.0.2.50 port 80/TCP is taken by service web")
	_, err = r.ApplyFile(ctx, "f.yaml", []byte("name: other\nselector: {a: b}\nports: [{port: 80}]\nexternalIPs: [192.0.2.50]\n"))
	mustFail(t, err, "external IP 192.0.2.50 port 80/TCP is taken by service web")
	b.Ports = []admin.ServicePortSpec{{Port: 80, Protocol: "UDP"}, {Port: 81}}
	if _, err := r.Create(ctx, b); err != nil {
		t.Fatalf("another protocol and port of the same address: %v", err)
	}
	if k := storetest.Keys(t, st, store.ExternalIPsPrefix); len(k) != 3 {
		t.Fatalf("claims %v, want web's 80/tcp and other's 80/udp and 81/tcp", k)
	}
	if _, err := r.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	c := webSpec()
	c.Name, c.ExternalIPs = "third", []string{"192.0.2.50"}
	if _, err := r.Create(ctx, c); err != nil {
		t.Fatalf("after the owner was removed: %v", err)
	}
}

// Hosts creating services at once never get the same VIP or NodePort.
func TestRegistryConcurrentUnique(t *testing.T) {
	e := storetest.Start(t)
	small, err := NewServiceRange(netip.MustParsePrefix("10.96.0.0/26"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for h := range 3 {
		r := New(Config{Store: e.Client(t, ""), Range: small, Host: fmt.Sprint("h", h), Logger: storetest.Logger(t)})
		wg.Go(func() {
			for i := range 20 {
				spec := webSpec()
				spec.Name, spec.Type = fmt.Sprintf("s%d-%d", h, i), "NodePort"
				if _, err := r.Create(context.Background(), spec); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := e.Client(t, "")
	vips, ports := map[netip.Addr]string{}, map[uint16]string{}
	kvs, _, _ := st.List(context.Background(), store.ServicesPrefix)
	for _, kv := range kvs {
		var s store.Service
		if err := kv.Decode(&s); err != nil {
			t.Fatal(err)
		}
		if o, dup := vips[s.ClusterIP]; dup {
			t.Errorf("VIP %s held by %s and %s", s.ClusterIP, o, s.Name)
		}
		if o, dup := ports[s.Ports[0].NodePort]; dup {
			t.Errorf("NodePort %d held by %s and %s", s.Ports[0].NodePort, o, s.Name)
		}
		vips[s.ClusterIP], ports[s.Ports[0].NodePort] = s.Name, s.Name
	}
	if len(kvs) != 60 || len(storetest.Keys(t, st, store.ServiceIPsPrefix)) != 60 || len(storetest.Keys(t, st, store.NodePortsPrefix)) != 60 {
		t.Fatalf("%d services, claims %d/%d", len(kvs), len(storetest.Keys(t, st, store.ServiceIPsPrefix)), len(storetest.Keys(t, st, store.NodePortsPrefix)))
	}
	// 64 addresses minus network, .1, .10 and broadcast: exactly full.
	spec := webSpec()
	spec.Name = "one-too-many"
	_, err = New(Config{Store: st, Range: small, Logger: storetest.Logger(t)}).Create(context.Background(), spec)
	mustFail(t, err, "no free VIP left in the service CIDR 10.96.0.0/26")
}

func TestRegistryApplyFile(t *testing.T) {
	st := storetest.New(t)
	r := newRegistry(t, st)
	ctx := context.Background()
	file := `
- name: web
  selector: {app: web}
  type: NodePort
  ports: [{name: http, port: 80, targetPort: 8080}]
- name: db
  selector: {app: db}
  clusterIP: None
  ports: [{port: 5432}]
`
	res, err := r.ApplyFile(ctx, "f.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, "web", admin.ActionCreated, "db", admin.ActionCreated)
	web, err := r.Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	res, err = r.ApplyFile(ctx, "f.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, "web", admin.ActionUnchanged, "db", admin.ActionUnchanged)
	// A change keeps the VIP and the NodePort of the same port.
	changed := strings.Replace(file, "targetPort: 8080", "targetPort: 9090", 1)
	res, _ = r.ApplyFile(ctx, "f.yaml", []byte(changed))
	wantActions(t, res, "web", admin.ActionConfigured, "db", admin.ActionUnchanged)
	web2, _ := r.Get(ctx, "web")
	if web2.ClusterIP != web.ClusterIP || web2.Ports[0].NodePort != web.Ports[0].NodePort || web2.Ports[0].TargetPort != 9090 {
		t.Fatalf("update lost allocations: %+v -> %+v", web.ServiceSpec, web2.ServiceSpec)
	}
	// get -o yaml output applies as unchanged.
	if res, err := r.ApplyFile(ctx, "get.json", mustJSON(t, web2)); err != nil {
		t.Fatal(err)
	} else {
		wantActions(t, res, "web", admin.ActionUnchanged)
	}
	// Back to ClusterIP: the NodePort is released.
	res, _ = r.ApplyFile(ctx, "f.yaml", []byte(strings.Replace(changed, "type: NodePort", "type: ClusterIP", 1)))
	wantActions(t, res, "web", admin.ActionConfigured, "db", admin.ActionUnchanged)
	if k := storetest.Keys(t, st, store.NodePortsPrefix); len(k) != 0 {
		t.Fatalf("NodePort claim left: %v", k)
	}
	// Immutable VIP; a bad file changes nothing at all.
	res, _ = r.ApplyFile(ctx, "f.yaml", []byte(strings.Replace(file, "clusterIP: None", "clusterIP: 10.96.9.9", 1)))
	if res[1].Error == "" || !strings.Contains(res[1].Error, "clusterIP cannot change") {
		t.Fatalf("immutable clusterIP: %+v", res)
	}
	before := len(storetest.Keys(t, st, ""))
	bad := file + "- name: new\n  selector: {app: new}\n  ports: [{port: 99999}]\n"
	_, err = r.ApplyFile(ctx, "f.yaml", []byte(bad))
	mustFail(t, err, "f.yaml: line 10: service new: port 99999 is out of range")
	if n := len(storetest.Keys(t, st, "")); n != before {
		t.Fatalf("a refused file changed etcd: %d keys before, %d after", before, n)
	}
	res, err = r.DeleteFile(ctx, "f.yaml", []byte(file+"- name: ghost\n"))
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, "web", admin.ActionDeleted, "db", admin.ActionDeleted, "ghost", admin.ActionNotFound)
	if k := storetest.Keys(t, st, ""); len(k) != 0 {
		t.Fatalf("left after delete -f: %v", k)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantActions(t *testing.T, res []admin.ApplyResult, pairs ...string) {
	t.Helper()
	if len(res) != len(pairs)/2 {
		t.Fatalf("results %+v, want %v", res, pairs)
	}
	for i := 0; i < len(pairs); i += 2 {
		r := res[i/2]
		if r.Name != pairs[i] || r.Action != pairs[i+1] || r.Error != "" {
			t.Fatalf("result %d = %+v, want %s %s", i/2, r, pairs[i], pairs[i+1])
		}
	}
}

func TestEnsureServiceCIDR(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	cidr := netip.MustParsePrefix("10.96.0.0/16")
	storetest.Put(t, st, store.PoolKey(netip.MustParsePrefix("10.96.128.0/24")), store.Pool{Subnet: netip.MustParsePrefix("10.96.128.0/24")})
	err := EnsureServiceCIDR(ctx, st, cidr, "h1")
	mustFail(t, err, "--service-cidr 10.96.0.0/16 overlaps the address pool 10.96.128.0/24")
	if !errors.Is(err, ErrServiceCIDR) {
		t.Fatal(err)
	}
	storetest.Delete(t, st, store.PoolKey(netip.MustParsePrefix("10.96.128.0/24")))
	if err := EnsureServiceCIDR(ctx, st, cidr, "h1"); err != nil {
		t.Fatal(err)
	}
	if err := EnsureServiceCIDR(ctx, st, cidr, "h2"); err != nil {
		t.Fatalf("same CIDR on another host: %v", err)
	}
	err = EnsureServiceCIDR(ctx, st, netip.MustParsePrefix("10.97.0.0/16"), "h3")
	mustFail(t, err, "--service-cidr 10.97.0.0/16 disagrees with the cluster's service CIDR 10.96.0.0/16 (recorded by host h1")
}

// TestRegistryApplyFileBatches: a file of many services is written in
// few transactions (each holds whole services, within etcd's 128
// operations), every VIP and NodePort distinct; delete -f removes them
// the same way.
func TestRegistryApplyFileBatches(t *testing.T) {
	st := storetest.New(t)
	r := newRegistry(t, st)
	ctx := context.Background()
	const n = 300
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "- name: s%d\n  selector: {app: s%d}\n  type: NodePort\n  ports: [{port: 80}]\n", i, i)
	}
	res, err := r.ApplyFile(ctx, "many.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	revs, vips, ports := map[int64]bool{}, map[netip.Addr]bool{}, map[uint16]bool{}
	for i, x := range res {
		if x.Action != admin.ActionCreated || x.Error != "" {
			t.Fatalf("result %d: %+v", i, x)
		}
		var s store.Service
		rev, err := st.Get(ctx, store.ServiceKey(x.Name), &s)
		if err != nil {
			t.Fatal(err)
		}
		revs[rev], vips[s.ClusterIP], ports[s.Ports[0].NodePort] = true, true, true
	}
	// A created NodePort service is 3 conditions and 3 writes: 42 per
	// transaction.
	if len(revs) > n/42+1 || len(vips) != n || len(ports) != n {
		t.Fatalf("%d services in %d transactions with %d VIPs and %d NodePorts; want at most %d transactions, all distinct",
			n, len(revs), len(vips), len(ports), n/42+1)
	}
	if k := storetest.Keys(t, st, store.ServiceIPsPrefix); len(k) != n {
		t.Fatalf("%d VIP claims, want %d", len(k), n)
	}
	res, err = r.ApplyFile(ctx, "many.yaml", []byte(b.String()))
	if err != nil || res[n-1].Action != admin.ActionUnchanged {
		t.Fatalf("applied again: %v %+v", err, res[n-1])
	}
	res, err = r.DeleteFile(ctx, "many.yaml", []byte(b.String()))
	if err != nil || res[0].Action != admin.ActionDeleted || res[n-1].Action != admin.ActionDeleted {
		t.Fatalf("delete -f: %v %+v %+v", err, res[0], res[n-1])
	}
	if k := storetest.Keys(t, st, ""); len(k) != 0 {
		t.Fatalf("left after delete -f: %d keys, e.g. %v", len(k), k[:min(3, len(k))])
	}
}

// TestRegistryApplyFileKeepsAskedVIPs: a VIP one object of a file asks
// for is never handed to an earlier object of the same file (a /28 with
// twelve free addresses, eleven to allocate and one asked for).
func TestRegistryApplyFileKeepsAskedVIPs(t *testing.T) {
	st := storetest.New(t)
	rng, err := NewServiceRange(netip.MustParsePrefix("10.96.0.0/28"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{Store: st, Range: rng, Host: "h1", Logger: storetest.Logger(t)})
	var b strings.Builder
	for i := range 11 {
		fmt.Fprintf(&b, "- name: s%d\n  selector: {app: s}\n  ports: [{port: 80}]\n", i)
	}
	b.WriteString("- name: last\n  selector: {app: s}\n  clusterIP: 10.96.0.14\n  ports: [{port: 80}]\n")
	res, err := r.ApplyFile(context.Background(), "f.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.Error != "" || x.Action != admin.ActionCreated {
			t.Fatalf("%+v", res)
		}
	}
}

// TestRegistryHealthCheckNodePort: a Local service gets a health-check
// NodePort (claimed like a NodePort, distinct from its own), keeps it
// across updates and frees it when it turns Cluster; one can be asked
// for, not without Local.
func TestRegistryHealthCheckNodePort(t *testing.T) {
	st := storetest.New(t)
	r := newRegistry(t, st)
	ctx := context.Background()
	file := "- name: web\n  selector: {app: web}\n  type: NodePort\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n"
	if _, err := r.ApplyFile(ctx, "f.yaml", []byte(file)); err != nil {
		t.Fatal(err)
	}
	v, err := r.Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	hc := v.HealthCheckNodePort
	if hc < NodePortMin || hc > NodePortMax || hc == v.Ports[0].NodePort {
		t.Fatalf("health-check NodePort %d (NodePort %d)", hc, v.Ports[0].NodePort)
	}
	if k := storetest.Keys(t, st, store.NodePortKey(uint16(hc))); len(k) != 1 {
		t.Fatalf("health-check NodePort %d not claimed", hc)
	}
	res, _ := r.ApplyFile(ctx, "f.yaml", []byte(strings.Replace(file, "port: 80", "port: 8080", 1)))
	wantActions(t, res, "web", admin.ActionConfigured)
	if v2, _ := r.Get(ctx, "web"); v2.HealthCheckNodePort != hc {
		t.Fatalf("update moved the health-check NodePort %d -> %d", hc, v2.HealthCheckNodePort)
	}
	res, _ = r.ApplyFile(ctx, "f.yaml", []byte(strings.Replace(file, "Local", "Cluster", 1)))
	wantActions(t, res, "web", admin.ActionConfigured)
	if k := storetest.Keys(t, st, store.NodePortKey(uint16(hc))); len(k) != 0 {
		t.Fatalf("health-check NodePort %d still claimed after Cluster", hc)
	}
	asked := strings.Replace(file, "  ports:", "  healthCheckNodePort: 31999\n  ports:", 1)
	res, _ = r.ApplyFile(ctx, "f.yaml", []byte(asked))
	wantActions(t, res, "web", admin.ActionConfigured)
	if v3, _ := r.Get(ctx, "web"); v3.HealthCheckNodePort != 31999 {
		t.Fatalf("asked-for health-check NodePort: %d", v3.HealthCheckNodePort)
	}
	_, err = r.ApplyFile(ctx, "f.yaml", []byte(strings.Replace(asked, "Local", "Cluster", 1)))
	mustFail(t, err, "healthCheckNodePort 31999 needs externalTrafficPolicy Local")
}

func TestEnsureExternalIPCIDRs(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	lab, _ := ParseExternalIPCIDRs([]string{"192.0.2.0/24"})
	if err := EnsureExternalIPCIDRs(ctx, st, lab, "h1"); err != nil {
		t.Fatal(err)
	}
	if err := EnsureExternalIPCIDRs(ctx, st, lab, "h2"); err != nil {
		t.Fatalf("the same list on another host: %v", err)
	}
	err := EnsureExternalIPCIDRs(ctx, st, nil, "h3")
	mustFail(t, err, "--external-ip-cidrs none disagrees with the cluster's 192.0.2.0/24 (recorded by host h1")
	if !errors.Is(err, ErrExternalIPCIDRs) {
		t.Fatal(err)
	}
}

// TestRegistryNodePortVsPublished: a NodePort a container publishes with
// -p (on any host) is refused naming the container and host, and never
// allocated.
func TestRegistryNodePortVsPublished(t *testing.T) {
	st := storetest.New(t)
	storetest.Put(t, st, store.EndpointKey("h2", "ep1"), store.Endpoint{ID: "ep1", Host: "h2",
		Ports: []store.PortMapping{{Proto: "tcp", HostPort: 30600, ContainerPort: 80}, {Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 30601}}})
	storetest.Put(t, st, store.EndpointMetaKey("h2", "ep1"), store.EndpointMeta{Endpoint: "ep1", Name: "web1"})
	r := newRegistry(t, st)
	spec := webSpec()
	spec.Type, spec.Ports[0].NodePort = "NodePort", 30600
	_, err := r.Create(context.Background(), spec)
	mustFail(t, err, "service web: nodePort 30600/TCP is published by container web1 on host h2 (docker run -p)")
	spec.Ports[0].NodePort = 30601 // published on loopback only: NodePorts do not answer there
	if _, err := r.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
}
