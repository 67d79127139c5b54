package registry

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/store"
	"go.yaml.in/yaml/v3"
)

const fullPolicy = `kind: NetworkPolicy
name: db
podSelector:
  matchLabels: {com.docker.compose.service: db}
  matchExpressions:
    - {key: tier, operator: in, values: [b, a, a]}
    - {key: legacy, operator: DoesNotExist}
ingress:
  - from:
      - podSelector: {matchLabels: {app: web}}
      - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports:
      - {port: 5432}
      - {protocol: udp, port: 8000, endPort: 8080}
      - {protocol: SCTP}
  - {}
egress:
  - to: [{podSelector: {}}]
`

func parsePolicy(t *testing.T, in string) store.NetworkPolicy {
	t.Helper()
	objs, err := ParseFile("p.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Kind != admin.KindNetworkPolicy {
		t.Fatalf("parsed %+v, want one network policy", objs)
	}
	p, err := ValidatePolicy(objs[0].Policy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidatePolicyCanonical(t *testing.T) {
	p := parsePolicy(t, fullPolicy)
	if strings.Join(p.PolicyTypes, ",") != "Ingress,Egress" {
		t.Errorf("policyTypes = %v, want Ingress, Egress (egress rules present)", p.PolicyTypes)
	}
	if r := p.PodSelector.MatchExpressions[0]; r.Operator != store.OpIn || strings.Join(r.Values, ",") != "a,b" {
		t.Errorf("requirement = %+v, want In [a b] (canonical operator, sorted values)", r)
	}
	in := p.Ingress[0]
	if len(in.Peers) != 2 || in.Peers[1].IPBlock.Except[0].String() != "10.1.0.0/16" {
		t.Errorf("peers = %+v", in.Peers)
	}
	want := []store.PolicyPort{{Protocol: "TCP", Port: 5432}, {Protocol: "UDP", Port: 8000, EndPort: 8080}, {Protocol: "SCTP"}}
	if len(in.Ports) != 3 || in.Ports[0] != want[0] || in.Ports[1] != want[1] || in.Ports[2] != want[2] {
		t.Errorf("ports = %+v, want %+v", in.Ports, want)
	}
	if len(p.Ingress[1].Peers)+len(p.Ingress[1].Ports) != 0 {
		t.Errorf("rule {} = %+v, want empty (allows everything)", p.Ingress[1])
	}
	if p.Egress[0].Peers[0].PodSelector == nil {
		t.Errorf("egress peer {} lost its podSelector")
	}
	// A policy without egress rules is an ingress policy only.
	q := parsePolicy(t, "kind: NetworkPolicy\nname: deny\npodSelector: {}\n")
	if strings.Join(q.PolicyTypes, ",") != "Ingress" || len(q.Ingress) != 0 {
		t.Errorf("deny-all = %+v", q)
	}
}

// What `policy get -o yaml` prints (podnetctl renders the JSON of the
// view as YAML) applies back to the same policy.
func TestPolicyRoundTrip(t *testing.T) {
	p := parsePolicy(t, fullPolicy)
	view := admin.PolicyView{PolicySpec: SpecOfPolicy(p), Status: &admin.PolicyStatus{Selected: []admin.PolicyTargetView{{Host: "h1"}}}}
	b, err := json.Marshal(view)
	if err != nil {
		t.Fatal(err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	q := parsePolicy(t, string(out))
	if !samePolicy(p, q) {
		t.Fatalf("round trip changed the policy:\n%s\nfirst  %+v\nsecond %+v", out, p, q)
	}
}

func TestValidatePolicyRefuses(t *testing.T) {
	base := "kind: NetworkPolicy\nname: p\npodSelector: {}\n"
	cases := []struct{ name, in, want string }{
		{"unknown field", base + "ingres: []\n", `line 4: unknown field "ingres"`},
		{"unknown nested field", base + "ingress:\n  - from:\n      - podSelector: {}\n        podselector: {}\n", `line 7: unknown field "podselector" in ingress[0].from[0]`},
		{"namespaceSelector", base + "ingress: [{from: [{namespaceSelector: {}}]}]\n", "Docker has no namespaces"},
		{"kubernetes manifest", "kind: NetworkPolicy\nmetadata: {name: p}\n", "at the top level"},
		{"unknown kind", "kind: Ingress\nname: p\n", `unknown kind "Ingress"`},
		{"bad name", "kind: NetworkPolicy\nname: Bad_Name\npodSelector: {}\n", `network policy name "Bad_Name"`},
		{"no podSelector", "kind: NetworkPolicy\nname: p\n", "podSelector is required"},
		{"bad label key", "kind: NetworkPolicy\nname: p\npodSelector: {matchLabels: {'a=b': c}}\n", `label key "a=b"`},
		{"value with comma", "kind: NetworkPolicy\nname: p\npodSelector: {matchLabels: {a: 'b,c'}}\n", "has ','"},
		{"bad operator", "kind: NetworkPolicy\nname: p\npodSelector: {matchExpressions: [{key: a, operator: Equals}]}\n", `operator "Equals"`},
		{"In without values", "kind: NetworkPolicy\nname: p\npodSelector: {matchExpressions: [{key: a, operator: In}]}\n", "In needs at least one value"},
		{"Exists with values", "kind: NetworkPolicy\nname: p\npodSelector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}\n", "Exists takes no values"},
		{"bad type", base + "policyTypes: [Inbound]\n", `"Inbound" is not a policy type`},
		{"type twice", base + "policyTypes: [Ingress, ingress]\n", "Ingress is given twice"},
		{"rules without type", base + "policyTypes: [Egress]\ningress: [{}]\n", "policyTypes has no Ingress"},
		{"empty peer", base + "ingress: [{from: [{}]}]\n", "a peer needs podSelector or ipBlock"},
		{"both peers", base + "ingress: [{from: [{podSelector: {}, ipBlock: {cidr: 10.0.0.0/8}}]}]\n", "not both"},
		{"bad CIDR", base + "ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]\n", `"10.0.0.0/33" is not a CIDR`},
		{"host bits", base + "ingress: [{from: [{ipBlock: {cidr: 10.1.2.3/16}}]}]\n", "did you mean 10.1.0.0/16"},
		{"except outside", base + "ingress: [{from: [{ipBlock: {cidr: 10.1.0.0/16, except: [10.2.0.0/24]}}]}]\n", "except 10.2.0.0/24 is not inside cidr 10.1.0.0/16"},
		{"except equal", base + "ingress: [{from: [{ipBlock: {cidr: 10.1.0.0/16, except: [10.1.0.0/16]}}]}]\n", "is not inside cidr"},
		{"except other family", base + "egress: [{to: [{ipBlock: {cidr: 10.1.0.0/16, except: ['fd00::/64']}}]}]\n", "is not inside cidr"},
		{"endPort below port", base + "ingress: [{ports: [{port: 90, endPort: 80}]}]\n", "endPort 80 is below port 90"},
		{"endPort without port", base + "ingress: [{ports: [{endPort: 80}]}]\n", "endPort 80 without port"},
		{"port out of range", base + "ingress: [{ports: [{port: 70000}]}]\n", "port 70000 is out of range"},
		{"port zero", base + "ingress: [{ports: [{port: 0}]}]\n", "port 0 is out of range"},
		{"endPort out of range", base + "ingress: [{ports: [{port: 1, endPort: 65536}]}]\n", "endPort 65536 is out of range"},
		{"named port", base + "ingress: [{ports: [{port: http}]}]\n", `port "http": named ports are not supported`},
		{"unknown protocol", base + "egress: [{ports: [{protocol: ICMP, port: 1}]}]\n", `unknown protocol "ICMP"`},
		{"wrong type", base + "ingress: [{ports: [{endPort: eighty}]}]\n", "line 4: cannot unmarshal"},
		{"twice", base + "---\n" + base, "line 5: network policy p is also defined on line 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, err := ParseFile("p.yaml", []byte(c.in))
			if err == nil {
				for _, o := range objs {
					if _, err = ValidatePolicy(o.Policy); err != nil {
						break
					}
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// A file may mix services and policies; the same name in two kinds is
// two objects.
func TestParseFileKinds(t *testing.T) {
	in := "- name: web\n  selector: {app: web}\n  ports: [{port: 80}]\n" +
		"- kind: Service\n  name: db\n  selector: {app: db}\n  ports: [{port: 5432}]\n" +
		"- kind: NetworkPolicy\n  name: web\n  podSelector: {matchLabels: {app: web}}\n"
	objs, err := ParseFile("f.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 || objs[0].Kind != admin.KindService || objs[1].Kind != admin.KindService ||
		objs[2].Kind != admin.KindNetworkPolicy || objs[2].Name() != "web" || objs[2].Line != 8 {
		t.Fatalf("objects = %+v", objs)
	}
}
