package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/admin"
)

func TestParsePort(t *testing.T) {
	for in, want := range map[string]admin.ServicePortSpec{
		"80":                {Port: 80},
		"80:8080":           {Port: 80, TargetPort: 8080},
		"http:80":           {Name: "http", Port: 80},
		"http:80:8080/tcp":  {Name: "http", Port: 80, TargetPort: 8080, Protocol: "tcp"},
		"53/udp":            {Port: 53, Protocol: "udp"},
		"99999":             {Port: 99999}, // range is podnetd's to refuse
		"dns:5353:53/UDP":   {Name: "dns", Port: 5353, TargetPort: 53, Protocol: "UDP"},
		"x:80/icmp":         {Name: "x", Port: 80, Protocol: "icmp"},
		"metrics:9090:9091": {Name: "metrics", Port: 9090, TargetPort: 9091},
	} {
		got, err := parsePort(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":        "want [NAME:]PORT",
		"80/":     "nothing after '/'",
		"a:b:c:d": "want [NAME:]PORT",
		"http":    `port "http" is not a number`,
		"80:http": `target port "http" is not a number`,
	} {
		if _, err := parsePort(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

func TestServiceFlagsSpec(t *testing.T) {
	f := serviceFlags{selectors: []string{"app=web,tier=front", "com.docker.compose.service=web"},
		ports: []string{"80", "443"}, nodePorts: []int{30080}, affinityTimeout: time.Hour}
	s, err := f.spec("web")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Selector) != 3 || s.Type != "NodePort" || s.Ports[0].NodePort != 30080 || s.Ports[1].NodePort != 0 ||
		*s.SessionAffinityConfig.ClientIP.TimeoutSeconds != 3600 {
		t.Fatalf("spec %+v", s)
	}
	for _, c := range []struct {
		f    serviceFlags
		want string
	}{
		{serviceFlags{selectors: []string{"app"}}, `--selector term "app" has no '='`},
		{serviceFlags{selectors: []string{"a=1,a=2"}}, `key "a" is given twice`},
		{serviceFlags{ports: []string{"80"}, nodePorts: []int{30001, 30002}}, "2 --node-port for 1 --port"},
		{serviceFlags{affinityTimeout: 1500 * time.Millisecond}, "whole seconds"},
		{serviceFlags{ports: []string{"80"}, nodePorts: []int{30001}, typ: "ClusterIP"}, "--node-port with --type ClusterIP"},
	} {
		if _, err := c.f.spec("x"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.f, err, c.want)
		}
	}
}

// TestServiceFlagsExplicitZeroTimeout: --affinity-timeout 0s reaches
// podnetd as an explicit 0 (which it refuses), not as "use the default".
func TestServiceFlagsExplicitZeroTimeout(t *testing.T) {
	f := serviceFlags{ports: []string{"80"}, affinity: "ClientIP", affinityTimeoutSet: true}
	s, err := f.spec("x")
	if err != nil {
		t.Fatal(err)
	}
	if c := s.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil || *c.ClientIP.TimeoutSeconds != 0 {
		t.Fatalf("explicit 0s became %+v", c)
	}
	f = serviceFlags{ports: []string{"80"}, nodePorts: []int{30001}}
	if s, err := f.spec("x"); err != nil || s.Type != "NodePort" {
		t.Fatalf("--node-port without --type: %+v %v, want type NodePort", s, err)
	}
}

// TestReadServiceFileCapped: a 50 MB file is refused by its size before
// it is read, a stream (here /dev/zero, endless) after one byte past the
// limit; a file at the limit is read whole.
func TestReadServiceFileCapped(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 50<<20); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{big, "/dev/zero"} {
		_, err := readServiceFile(f)
		if !errors.Is(err, admin.ErrFileTooLarge) || !strings.Contains(err.Error(), "over 4 MiB") || !strings.Contains(err.Error(), f) {
			t.Errorf("%s: %v, want the file named as over 4 MiB", f, err)
		}
	}
	if err := os.Truncate(big, admin.MaxServiceFile); err != nil {
		t.Fatal(err)
	}
	if b, err := readServiceFile(big); err != nil || len(b) != admin.MaxServiceFile {
		t.Fatalf("a file at the limit: %d bytes, %v", len(b), err)
	}
}
