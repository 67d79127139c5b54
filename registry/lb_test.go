package registry

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/store"
	"github.com/podnet/podnet/store/storetest"
)

func TestValidatePoolRefuses(t *testing.T) {
	good := admin.LBPoolSpec{Name: "lan", CIDRs: []string{"192.0.2.240/28"}}
	p, err := ValidatePool(good)
	if err != nil || p.Mode != store.LBModeL2 || p.CIDRs[0] != netip.MustParsePrefix("192.0.2.240/28") {
		t.Fatalf("%+v %v", p, err)
	}
	for _, tc := range []struct {
		name   string
		change func(*admin.LBPoolSpec)
		want   string
	}{
		{"bad name", func(s *admin.LBPoolSpec) { s.Name = "Lan" }, `load-balancer pool name "Lan"`},
		{"bad mode", func(s *admin.LBPoolSpec) { s.Mode = "OSPF" }, `mode "OSPF": use L2`},
		{"no cidrs", func(s *admin.LBPoolSpec) { s.CIDRs = nil }, "no cidrs"},
		{"host bits", func(s *admin.LBPoolSpec) { s.CIDRs = []string{"192.0.2.241/28"} }, "did you mean 192.0.2.240/28"},
		{"not a cidr", func(s *admin.LBPoolSpec) { s.CIDRs = []string{"lan"} }, `cidr "lan": want a CIDR`},
		{"overlap inside", func(s *admin.LBPoolSpec) { s.CIDRs = []string{"192.0.2.0/24", "192.0.2.16/28"} }, "cidrs 192.0.2.0/24 and 192.0.2.16/28 overlap"},
		{"loopback", func(s *admin.LBPoolSpec) { s.CIDRs = []string{"127.0.0.0/24"} }, "cannot receive traffic"},
		{"multicast", func(s *admin.LBPoolSpec) { s.CIDRs = []string{"239.1.0.0/16"} }, "cannot receive traffic"},
		{"too large", func(s *admin.LBPoolSpec) { s.CIDRs = []string{"10.0.0.0/7"} }, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := good
			tc.change(&spec)
			_, err := ValidatePool(spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("err = %v, want one containing %q classified fault.ErrInvalid", err, tc.want)
			}
		})
	}
}

func TestValidatePeerRefuses(t *testing.T) {
	good := admin.BGPPeerSpec{Name: "tor", PeerAddress: "10.0.0.1", PeerASN: 64513, MyASN: 4200000000}
	p, err := ValidatePeer(good)
	if err != nil || p.HoldTime != 90 || p.MyASN != 4200000000 {
		t.Fatalf("%+v %v", p, err)
	}
	if again, err := ValidatePeer(PeerSpecOf(p)); err != nil || !samePeer(again, p) {
		t.Fatalf("PeerSpecOf does not validate back: %+v %v", again, err)
	}
	for _, tc := range []struct {
		name   string
		change func(*admin.BGPPeerSpec)
		want   string
	}{
		{"no address", func(s *admin.BGPPeerSpec) { s.PeerAddress = "" }, "no peerAddress"},
		{"bad address", func(s *admin.BGPPeerSpec) { s.PeerAddress = "router" }, `peerAddress "router" is not an IP address`},
		{"link-local", func(s *admin.BGPPeerSpec) { s.PeerAddress = "fe80::1" }, "link-local"},
		{"multicast", func(s *admin.BGPPeerSpec) { s.PeerAddress = "224.0.0.5" }, "not a router's address"},
		{"no peer ASN", func(s *admin.BGPPeerSpec) { s.PeerASN = 0 }, "no peerASN"},
		{"ASN range", func(s *admin.BGPPeerSpec) { s.MyASN = 4294967296 }, "myASN 4294967296 is out of range"},
		{"negative ASN", func(s *admin.BGPPeerSpec) { s.PeerASN = -1 }, "peerASN -1 is out of range"},
		{"AS_TRANS", func(s *admin.BGPPeerSpec) { s.MyASN = 23456 }, "AS_TRANS"},
		{"hold time", func(s *admin.BGPPeerSpec) { s.HoldTime = "2s" }, "holdTime 2s: want 0"},
		{"hold time text", func(s *admin.BGPPeerSpec) { s.HoldTime = "soon" }, `holdTime "soon"`},
		{"password", func(s *admin.BGPPeerSpec) { s.Password = strings.Repeat("x", 81) }, "TCP MD5 keys are at most 80"},
		{"host twice", func(s *admin.BGPPeerSpec) { s.Hosts = []string{"h1", "h1"} }, "hosts: h1 is given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := good
			tc.change(&spec)
			_, err := ValidatePeer(spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("err = %v, want one containing %q classified fault.ErrInvalid", err, tc.want)
			}
		})
	}
}

// lbCluster is an etcd with a podnet pool and a host, and a registry.
func lbCluster(t *testing.T) (*store.Store, *Registry) {
	t.Helper()
	st := storetest.New(t)
	storetest.Put(t, st, store.PoolKey(netip.MustParsePrefix("10.244.0.0/16")), store.Pool{Subnet: netip.MustParsePrefix("10.244.0.0/16")})
	storetest.Put(t, st, store.HostKey("h1"), store.Host{Name: "h1", Underlay: netip.MustParseAddr("192.0.2.11")})
	return st, newRegistry(t, st)
}

const lbFile = `
- kind: LoadBalancerPool
  name: lan
  cidrs: [192.0.2.240/28]
- kind: LoadBalancerPool
  name: routed
  mode: BGP
  cidrs: [198.51.100.0/24]
- kind: BGPPeer
  name: tor
  peerAddress: 192.0.2.1
  peerASN: 64513
  myASN: 64512
  holdTime: 9s
- name: web
  selector: {app: web}
  type: LoadBalancer
  loadBalancerIP: 198.51.100.7
  externalTrafficPolicy: Local
  ports: [{port: 80}]
- name: api
  selector: {app: api}
  type: LoadBalancer
  ports: [{port: 443}]
`

func TestRegistryLoadBalancer(t *testing.T) {
	st, r := lbCluster(t)
	ctx := context.Background()
	res, err := r.ApplyFile(ctx, "lb.yaml", []byte(lbFile))
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, "lan", admin.ActionCreated, "routed", admin.ActionCreated, "tor", admin.ActionCreated,
		"web", admin.ActionCreated, "api", admin.ActionCreated)
	web, err := r.Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := r.Get(ctx, "api")
	// Asked for: kept; allocated: the lowest usable address of the first
	// pool by name (.240 is the CIDR's first address, never handed out).
	if web.LoadBalancerIP != "198.51.100.7" || api.LoadBalancerIP != "192.0.2.241" {
		t.Fatalf("addresses: web %q, api %q", web.LoadBalancerIP, api.LoadBalancerIP)
	}
	if web.Ports[0].NodePort == 0 || web.Status.LoadBalancer == nil || web.Status.LoadBalancer.Pool != "routed" ||
		web.Status.LoadBalancer.Mode != store.LBModeBGP {
		t.Fatalf("web: %+v %+v", web.ServiceSpec, web.Status.LoadBalancer)
	}
	var c store.LBIPClaim
	if _, err := st.Get(ctx, store.LBIPKey(netip.MustParseAddr("192.0.2.241")), &c); err != nil || c.Service != "api" {
		t.Fatalf("claim: %+v %v", c, err)
	}
	// The same file again changes nothing; get -o json applies back.
	res, _ = r.ApplyFile(ctx, "lb.yaml", []byte(lbFile))
	wantActions(t, res, "lan", admin.ActionUnchanged, "routed", admin.ActionUnchanged, "tor", admin.ActionUnchanged,
		"web", admin.ActionUnchanged, "api", admin.ActionUnchanged)
	if res, err := r.ApplyFile(ctx, "get.json", mustJSON(t, api)); err != nil {
		t.Fatal(err)
	} else {
		wantActions(t, res, "api", admin.ActionUnchanged)
	}
	pools, _ := r.Pools(ctx, "lan")
	if len(pools) != 1 || pools[0].Status.Size != 14 || len(pools[0].Status.Used) != 1 || pools[0].Status.Used[0].Service != "api" {
		t.Fatalf("pool view: %+v", pools)
	}
	if res, err := r.ApplyFile(ctx, "get.json", mustJSON(t, pools[0])); err != nil {
		t.Fatal(err)
	} else {
		wantActions(t, res, "lan", admin.ActionUnchanged)
	}
	peers, _ := r.Peers(ctx, "tor")
	if res, err := r.ApplyFile(ctx, "get.json", mustJSON(t, peers[0])); err != nil {
		t.Fatal(err)
	} else {
		wantActions(t, res, "tor", admin.ActionUnchanged)
	}

	// Refusals, none of which stores anything.
	before := storetest.Keys(t, st, "")
	for _, tc := range []struct{ name, file, want string }{
		{"overlapping pools", "kind: LoadBalancerPool\nname: more\ncidrs: [192.0.2.248/29]\n", "192.0.2.248/29 overlaps 192.0.2.240/28 of pool lan"},
		{"overlap in the file", "- {kind: LoadBalancerPool, name: a, cidrs: [203.0.113.0/25]}\n- {kind: LoadBalancerPool, name: b, cidrs: [203.0.113.0/24]}\n", "overlaps"},
		{"service CIDR", "kind: LoadBalancerPool\nname: svc\ncidrs: [10.96.1.0/24]\n", "overlaps the service CIDR 10.96.0.0/16"},
		{"podnet pool", "kind: LoadBalancerPool\nname: pods\ncidrs: [10.244.7.0/24]\n", "overlaps podnet pool 10.244.0.0/16"},
		{"host address", "kind: LoadBalancerPool\nname: hosts\ncidrs: [192.0.2.0/28]\n", "holds 192.0.2.11, the underlay address of host h1"},
		{"outside pools", "name: x\nselector: {a: b}\ntype: LoadBalancer\nloadBalancerIP: 203.0.113.9\nports: [{port: 80}]\n", "loadBalancerIP 203.0.113.9 is outside every load-balancer pool (pools: lan 192.0.2.240/28 (L2); routed"},
		{"taken", "name: x\nselector: {a: b}\ntype: LoadBalancer\nloadBalancerIP: 198.51.100.7\nports: [{port: 80}]\n", "loadBalancerIP 198.51.100.7 is taken by service web"},
		{"first address", "name: x\nselector: {a: b}\ntype: LoadBalancer\nloadBalancerIP: 192.0.2.240\nports: [{port: 80}]\n", "never handed out"},
		{"not a LoadBalancer", "name: x\nselector: {a: b}\nloadBalancerIP: 192.0.2.244\nports: [{port: 80}]\n", "needs type LoadBalancer"},
		{"external IP in a pool", "name: x\nselector: {a: b}\nexternalIPs: [192.0.2.244]\nports: [{port: 80}]\n", "lies in load-balancer pool lan"},
		{"peer at a host", "kind: BGPPeer\nname: self\npeerAddress: 192.0.2.11\npeerASN: 1\nmyASN: 2\n", "underlay address of host h1"},
		{"peer twice", "kind: BGPPeer\nname: tor2\npeerAddress: 192.0.2.1\npeerASN: 1\nmyASN: 2\n", "peer tor has the same peerAddress"},
		{"unknown field", "kind: LoadBalancerPool\nname: u\ncidrs: [203.0.113.0/24]\nautoAssign: false\n", `line 4: unknown field "autoAssign"`},
		{"unknown kind", "kind: IPAddressPool\nname: u\n", `line 1: unknown kind "IPAddressPool"`},
		{"bad ASN", "kind: BGPPeer\nname: p\npeerAddress: 192.0.2.2\npeerASN: 0\nmyASN: 2\n", "line 1: BGP peer p: no peerASN"},
		{"shrink under a service", "kind: LoadBalancerPool\nname: routed\nmode: BGP\ncidrs: [198.51.100.128/25]\n", "198.51.100.7 (service web) would no longer be in the pool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.ApplyFile(ctx, "bad.yaml", []byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("err = %v, want one containing %q classified fault.ErrInvalid", err, tc.want)
			}
			if after := storetest.Keys(t, st, ""); len(after) != len(before) {
				t.Fatalf("a refused file stored something: %d keys before, %d after", len(before), len(after))
			}
		})
	}

	// A pool in use cannot go; once its services are gone it can, and
	// the addresses are free again.
	_, err = r.RemovePool(ctx, "lan")
	mustFail(t, err, "load-balancer pool lan has addresses in use: 192.0.2.241 (service api)")
	res, err = r.DeleteFile(ctx, "lb.yaml", []byte(lbFile))
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, "lan", admin.ActionDeleted, "routed", admin.ActionDeleted, "tor", admin.ActionDeleted,
		"web", admin.ActionDeleted, "api", admin.ActionDeleted)
	for _, p := range []string{store.LBPoolsPrefix, store.BGPPeersPrefix, store.LBIPsPrefix, store.ServicesPrefix} {
		if k := storetest.Keys(t, st, p); len(k) != 0 {
			t.Fatalf("left after delete -f: %v", k)
		}
	}
}

// A type change releases the address; an update keeps it.
func TestRegistryLoadBalancerUpdate(t *testing.T) {
	st, r := lbCluster(t)
	ctx := context.Background()
	if _, err := r.ApplyFile(ctx, "p.yaml", []byte("kind: LoadBalancerPool\nname: lan\ncidrs: [192.0.2.240/30]\n")); err != nil {
		t.Fatal(err)
	}
	spec := webSpec()
	spec.Type = "LoadBalancer"
	s, err := r.Create(ctx, spec)
	if err != nil || s.LoadBalancerIP != netip.MustParseAddr("192.0.2.241") {
		t.Fatalf("%v %v", s.LoadBalancerIP, err)
	}
	second := webSpec()
	second.Name, second.Type = "two", "LoadBalancer"
	if s2, err := r.Create(ctx, second); err != nil || s2.LoadBalancerIP != netip.MustParseAddr("192.0.2.242") {
		t.Fatalf("%v %v", s2.LoadBalancerIP, err)
	}
	third := webSpec()
	third.Name, third.Type = "three", "LoadBalancer"
	_, err = r.Create(ctx, third)
	mustFail(t, err, "no free address left in the load-balancer pools")
	spec.Ports[0].TargetPort = 9090
	res, err := r.ApplyFile(ctx, "w.json", mustJSON(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, "web", admin.ActionConfigured)
	if v, _ := r.Get(ctx, "web"); v.LoadBalancerIP != "192.0.2.241" {
		t.Fatalf("update moved the address: %q", v.LoadBalancerIP)
	}
	spec.Type = "ClusterIP"
	if _, err := r.ApplyFile(ctx, "w.json", mustJSON(t, spec)); err != nil {
		t.Fatal(err)
	}
	if k := storetest.Keys(t, st, store.LBIPsPrefix); len(k) != 1 {
		t.Fatalf("claims after type change: %v", k)
	}
	if _, err := r.Create(ctx, third); err != nil {
		t.Fatalf("the freed address was not handed out again: %v", err)
	}
}
