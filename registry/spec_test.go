package registry

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/store"
)

func testRange(t *testing.T) ServiceRange {
	t.Helper()
	r, err := NewServiceRange(netip.MustParsePrefix("10.96.0.0/16"), netip.MustParseAddr("10.96.0.10"))
	if err != nil {
		t.Fatal(err)
	}
	// The lab-like allow-list: documentation addresses and a range that
	// holds the tests' pool, hosts and gateway.
	r.ExternalCIDRs, err = ParseExternalIPCIDRs([]string{"192.0.2.0/24", "10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func webSpec() admin.ServiceSpec {
	return admin.ServiceSpec{Name: "web", Selector: map[string]string{"app": "web"},
		Ports: []admin.ServicePortSpec{{Port: 80, TargetPort: 8080}}}
}

func TestValidateDefaults(t *testing.T) {
	s, err := testRange(t).ValidateService(webSpec())
	if err != nil {
		t.Fatal(err)
	}
	want := store.Service{Name: "web", Selector: map[string]string{"app": "web"}, Type: "ClusterIP",
		Ports:           []store.ServicePort{{Protocol: "TCP", Port: 80, TargetPort: 8080}},
		SessionAffinity: "None", ExternalTrafficPolicy: "Cluster"}
	if !sameSpec(s, want) {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
	spec := webSpec()
	spec.Type, spec.SessionAffinity, spec.ExternalTrafficPolicy = "nodeport", "clientip", "local"
	spec.Ports = []admin.ServicePortSpec{{Name: "dns", Port: 53, Protocol: "udp", NodePort: 30053}, {Name: "dns-tcp", Port: 53}}
	spec.ExternalIPs = []string{"192.0.2.9", "192.0.2.1"}
	spec.ClusterIP = "10.96.3.4"
	s, err = testRange(t).ValidateService(spec)
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != "NodePort" || s.SessionAffinity != "ClientIP" || s.AffinityTimeout != 10800 ||
		s.ExternalTrafficPolicy != "Local" || s.Ports[0].Protocol != "UDP" || s.Ports[0].NodePort != 30053 ||
		s.ClusterIP != netip.MustParseAddr("10.96.3.4") || s.ExternalIPs[0] != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("canonical form wrong: %+v", s)
	}
	// SpecOf is the inverse: validating it again gives the same service.
	again, err := testRange(t).ValidateService(SpecOf(s))
	if err != nil || !sameSpec(again, s) {
		t.Fatalf("SpecOf round trip: %v\n%+v\n%+v", err, again, s)
	}
	head := webSpec()
	head.ClusterIP = "None"
	if s, err := testRange(t).ValidateService(head); err != nil || !s.Headless {
		t.Fatalf("headless: %+v %v", s, err)
	}
}

func TestValidateRefuses(t *testing.T) {
	cases := []struct {
		name string
		edit func(*admin.ServiceSpec)
		want string
	}{
		{"bad name", func(s *admin.ServiceSpec) { s.Name = "Web_1" }, `service name "Web_1"`},
		{"empty selector", func(s *admin.ServiceSpec) { s.Selector = nil }, "empty selector"},
		{"selector key with =", func(s *admin.ServiceSpec) { s.Selector = map[string]string{"a=b": "c"} }, "no '='"},
		{"no port", func(s *admin.ServiceSpec) { s.Ports = nil }, "no port"},
		{"port 0", func(s *admin.ServiceSpec) { s.Ports[0].Port = 0 }, "port 0 is out of range 1-65535"},
		{"port 70000", func(s *admin.ServiceSpec) { s.Ports[0].Port = 70000 }, "port 70000 is out of range"},
		{"target out of range", func(s *admin.ServiceSpec) { s.Ports[0].TargetPort = 65536 }, "target port 65536"},
		{"duplicate port", func(s *admin.ServiceSpec) {
			s.Ports = append(s.Ports, admin.ServicePortSpec{Port: 80, Protocol: "tcp"})
		}, "duplicate port 80/TCP"},
		{"unknown protocol", func(s *admin.ServiceSpec) { s.Ports[0].Protocol = "icmp" }, `unknown protocol "icmp"`},
		{"duplicate port name", func(s *admin.ServiceSpec) {
			s.Ports = []admin.ServicePortSpec{{Name: "a", Port: 1}, {Name: "a", Port: 2}}
		}, `duplicate port name "a"`},
		{"bad port name", func(s *admin.ServiceSpec) { s.Ports[0].Name = "HTTP" }, `port name "HTTP"`},
		{"nodePort without NodePort type", func(s *admin.ServiceSpec) { s.Ports[0].NodePort = 30001 }, "needs type NodePort"},
		{"nodePort out of range", func(s *admin.ServiceSpec) { s.Type = "NodePort"; s.Ports[0].NodePort = 8080 }, "outside the NodePort range 30000-32767"},
		{"unknown type", func(s *admin.ServiceSpec) { s.Type = "ExternalName" }, `type "ExternalName" is not supported`},
		{"VIP outside", func(s *admin.ServiceSpec) { s.ClusterIP = "10.97.0.1" }, "outside the service CIDR 10.96.0.0/16"},
		{"VIP .1", func(s *admin.ServiceSpec) { s.ClusterIP = "10.96.0.1" }, "reserved"},
		{"VIP DNS", func(s *admin.ServiceSpec) { s.ClusterIP = "10.96.0.10" }, "cluster DNS address"},
		{"VIP garbage", func(s *admin.ServiceSpec) { s.ClusterIP = "ten" }, `clusterIP "ten"`},
		{"external IP loopback", func(s *admin.ServiceSpec) { s.ExternalIPs = []string{"127.0.0.1"} }, "cannot receive"},
		{"external IP in CIDR", func(s *admin.ServiceSpec) { s.ExternalIPs = []string{"10.96.5.5"} }, "lies in the service CIDR"},
		{"external IP twice", func(s *admin.ServiceSpec) { s.ExternalIPs = []string{"192.0.2.1", "192.0.2.1"} }, "given twice"},
		{"external IP v6", func(s *admin.ServiceSpec) { s.ExternalIPs = []string{"2001:db8::1"} }, "other address family"},
		{"external IP outside the allow-list", func(s *admin.ServiceSpec) { s.ExternalIPs = []string{"8.8.8.8"} },
			"external IP 8.8.8.8 is outside the cluster's --external-ip-cidrs 10.0.0.0/8,192.0.2.0/24"},
		{"external IP link-local", func(s *admin.ServiceSpec) { s.ExternalIPs = []string{"169.254.169.254"} }, "cannot receive"},
		{"external IP multicast", func(s *admin.ServiceSpec) { s.ExternalIPs = []string{"224.0.0.251"} }, "cannot receive"},
		{"affinity unknown", func(s *admin.ServiceSpec) { s.SessionAffinity = "Cookie" }, `sessionAffinity "Cookie"`},
		{"timeout without ClientIP", func(s *admin.ServiceSpec) {
			s.SessionAffinityConfig = &admin.SessionAffinityConfig{ClientIP: &admin.ClientIPConfig{TimeoutSeconds: ptr(5)}}
		}, "needs sessionAffinity ClientIP"},
		{"timeout too long", func(s *admin.ServiceSpec) {
			s.SessionAffinity = "ClientIP"
			s.SessionAffinityConfig = &admin.SessionAffinityConfig{ClientIP: &admin.ClientIPConfig{TimeoutSeconds: ptr(86401)}}
		}, "affinity timeout 86401s"},
		{"timeout zero", func(s *admin.ServiceSpec) {
			s.SessionAffinity = "ClientIP"
			s.SessionAffinityConfig = &admin.SessionAffinityConfig{ClientIP: &admin.ClientIPConfig{TimeoutSeconds: ptr(0)}}
		}, "affinity timeout 0s: want 1s to 86400s"},
		{"label key too long", func(s *admin.ServiceSpec) { s.Selector = map[string]string{strings.Repeat("k", 64): "v"} }, "name part"},
		{"label prefix too long", func(s *admin.ServiceSpec) {
			s.Selector = map[string]string{strings.Repeat("p", 254) + "/app": "v"}
		}, "prefix"},
		{"label value too long", func(s *admin.ServiceSpec) { s.Selector = map[string]string{"app": strings.Repeat("v", 64)} }, "at most 63"},
		{"selector huge", func(s *admin.ServiceSpec) {
			s.Selector = map[string]string{"app": strings.Repeat("v", 3<<20)}
		}, "at most 63"},
		{"too many terms", func(s *admin.ServiceSpec) {
			for i := range 65 {
				s.Selector[fmt.Sprintf("k%d", i)] = "v"
			}
		}, "at most 64 terms"},
		{"Local without external traffic", func(s *admin.ServiceSpec) { s.ExternalTrafficPolicy = "Local" }, "externalTrafficPolicy Local applies"},
		{"policy unknown", func(s *admin.ServiceSpec) { s.ExternalTrafficPolicy = "Nearest" }, `externalTrafficPolicy "Nearest"`},
		{"headless NodePort", func(s *admin.ServiceSpec) { s.ClusterIP = "None"; s.Type = "NodePort" }, "headless"},
		{"headless affinity", func(s *admin.ServiceSpec) { s.ClusterIP = "None"; s.SessionAffinity = "ClientIP" }, "headless"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := webSpec()
			c.edit(&spec)
			_, err := testRange(t).ValidateService(spec)
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("err = %v, want one containing %q classified fault.ErrInvalid", err, c.want)
			}
		})
	}
}

func TestServiceRange(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/8", "10.96.0.0/29", "fd00::/64"} {
		if _, err := NewServiceRange(netip.MustParsePrefix(bad), netip.Addr{}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	r, err := NewServiceRange(netip.MustParsePrefix("10.96.0.0/28"), netip.MustParseAddr("10.96.0.5"))
	if err != nil {
		t.Fatal(err)
	}
	if r.size() != 16 || nthAddr(r.CIDR.Addr(), 15) != netip.MustParseAddr("10.96.0.15") {
		t.Fatalf("size %d, last %s", r.size(), nthAddr(r.CIDR.Addr(), 15))
	}
	for _, a := range []string{"10.96.0.0", "10.96.0.1", "10.96.0.5", "10.96.0.10", "10.96.0.15"} {
		if _, ok := r.Reserved[netip.MustParseAddr(a)]; !ok {
			t.Errorf("%s not reserved", a)
		}
	}
	if got := r.addrIndex(netip.MustParseAddr("10.96.0.12")); got != 12 {
		t.Errorf("addrIndex = %d", got)
	}
	if a := nthAddr(netip.MustParseAddr("10.96.255.255"), 1); a != netip.MustParseAddr("10.97.0.0") {
		t.Errorf("carry: %s", a)
	}
}

func ptr[T any](v T) *T { return &v }

// TestExternalIPsNoneAllowed: without --external-ip-cidrs every external
// IP is refused, naming the flag.
func TestExternalIPsNoneAllowed(t *testing.T) {
	r := testRange(t)
	r.ExternalCIDRs = nil
	spec := webSpec()
	spec.ExternalIPs = []string{"192.0.2.9"}
	_, err := r.ValidateService(spec)
	if err == nil || !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "allows no external IPs (podnetd --external-ip-cidrs is empty)") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseExternalIPCIDRs(t *testing.T) {
	got, err := ParseExternalIPCIDRs([]string{"192.0.2.7/24", " 10.1.2.3 ", "", "192.0.2.0/24", "::ffff:10.9.0.0/112"})
	if err != nil || prefixesText(got) != "10.1.2.3/32,10.9.0.0/16,192.0.2.0/24" {
		t.Fatalf("%v %v", prefixesText(got), err)
	}
	if _, err := ParseExternalIPCIDRs([]string{"example.com"}); err == nil || !strings.Contains(err.Error(), "--external-ip-cidrs") {
		t.Fatalf("garbage: %v", err)
	}
}
