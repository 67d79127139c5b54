package cniconf

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	c, err := Parse([]byte(`{"cniVersion":"1.0.0","name":"pods","type":"podnet","subnet":"10.44.1.2/16","socket":"/s",
		"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"mac":"02:00:00:00:00:01"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subnet != netip.MustParsePrefix("10.44.0.0/16") || c.Socket != "/s" || c.Name != "pods" || c.CNIVersion != "1.0.0" {
		t.Fatalf("parsed %+v", c)
	}
	if len(c.RuntimeConfig.PortMappings) != 1 || c.RuntimeConfig.PortMappings[0].HostPort != 8080 {
		t.Fatalf("port mappings %+v", c.RuntimeConfig.PortMappings)
	}
	for _, bad := range []string{`{"name":"pods","type":"podnet"}`, `{"type":"podnet","subnet":"10.1.0.0/16"}`, `{`,
		`{"name":"pods","subnet":"10.1.0.0"}`} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%s) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestRequestedIPsAndMAC(t *testing.T) {
	args, err := ParseArgs("IgnoreUnknown=1;K8S_POD_NAME=web1;K8S_POD_NAMESPACE=default;IP=10.44.0.9;MAC=02:00:00:00:00:09;OTHER=x")
	if err != nil {
		t.Fatal(err)
	}
	if args.K8S_POD_NAME != "web1" {
		t.Fatalf("K8S_POD_NAME = %q", args.K8S_POD_NAME)
	}
	var c NetConf
	ips, err := c.RequestedIPs(args)
	if err != nil || !slices.Equal(ips, []netip.Addr{netip.MustParseAddr("10.44.0.9")}) {
		t.Fatalf("CNI_ARGS IP: %v, %v", ips, err)
	}
	if c.RequestedMAC(args) != "02:00:00:00:00:09" {
		t.Fatalf("CNI_ARGS MAC: %s", c.RequestedMAC(args))
	}
	// The capability wins over args, which win over CNI_ARGS; a prefix
	// length is accepted.
	c.Args.CNI.IPs = []string{"10.44.0.10"}
	c.RuntimeConfig.IPs = []string{"10.44.0.11/16", "fd00::11"}
	c.RuntimeConfig.MAC = "02:00:00:00:00:11"
	ips, err = c.RequestedIPs(args)
	if err != nil || !slices.Equal(ips, []netip.Addr{netip.MustParseAddr("10.44.0.11"), netip.MustParseAddr("fd00::11")}) {
		t.Fatalf("ips capability: %v, %v", ips, err)
	}
	if c.RequestedMAC(args) != "02:00:00:00:00:11" {
		t.Fatalf("mac capability: %s", c.RequestedMAC(args))
	}
	c.RuntimeConfig.IPs = []string{"not-an-ip"}
	if _, err := c.RequestedIPs(args); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad IP: %v", err)
	}
	if _, err := ParseArgs("K8S_POD_NAME"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("malformed CNI_ARGS: %v", err)
	}
}

func TestAliases(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want []string
	}{
		{`["web","www"]`, []string{"web", "www"}},
		{`{"pods":["web","0123456789ab"],"other":["x"]}`, []string{"web", "0123456789ab"}},
		{`{"other":["x"]}`, nil},
		{``, nil},
	} {
		conf := NetConf{RuntimeConfig: RuntimeConfig{Aliases: json.RawMessage(c.raw)}}
		conf.Name = "pods"
		got, err := conf.AliasesFor()
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("aliases %s: %v, %v; want %v", c.raw, got, err, c.want)
		}
	}
	conf := NetConf{RuntimeConfig: RuntimeConfig{Aliases: json.RawMessage(`42`)}}
	if _, err := conf.AliasesFor(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("aliases 42: %v", err)
	}
}

// The conflist cni-config prints: what the plugin parses back, with the
// capabilities runtimes look for.
func TestConfList(t *testing.T) {
	cl, err := NewConfList("pods", netip.MustParsePrefix("10.44.3.0/16"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cniVersion":"1.1.0","name":"pods","plugins":[{"type":"podnet","subnet":"10.44.0.0/16","capabilities":{"aliases":true,"ips":true,"mac":true,"portMappings":true}}]}`
	if string(b) != want {
		t.Fatalf("conflist\n got %s\nwant %s", b, want)
	}
	// What a runtime hands the plugin: the plugin entry plus name and version.
	var entry map[string]any
	_ = json.Unmarshal(b, &struct {
		Plugins []*map[string]any `json:"plugins"`
	}{Plugins: []*map[string]any{&entry}})
	entry["name"], entry["cniVersion"] = cl.Name, cl.CNIVersion
	stdin, _ := json.Marshal(entry)
	c, err := Parse(stdin)
	if err != nil || c.Subnet != netip.MustParsePrefix("10.44.0.0/16") || c.Type != Type {
		t.Fatalf("the plugin cannot read its own configuration: %+v, %v", c, err)
	}
	if _, err := NewConfList("pods", netip.MustParsePrefix("10.44.0.0/16"), "9.9.9", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown version: %v", err)
	}
	if cl, _ := NewConfList("pods", netip.MustParsePrefix("10.44.0.0/16"), "1.0.0", "/tmp/p.sock"); cl.CNIVersion != "1.0.0" || cl.Plugins[0].Socket != "/tmp/p.sock" {
		t.Fatalf("version and socket not kept: %+v", cl)
	}
}
