package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/fault"
)

func TestParseFile(t *testing.T) {
	one := `
name: web
selector:
  com.docker.compose.service: web
type: NodePort
ports:
  - name: http
    port: 80
    targetPort: 8080
    protocol: TCP
    nodePort: 30080
clusterIP: 10.96.0.50
externalIPs: [192.0.2.7]
sessionAffinity: ClientIP
sessionAffinityConfig:
  clientIP:
    timeoutSeconds: 60
externalTrafficPolicy: Local
status:
  endpoints: [{host: h1}]
`
	got, err := ParseFile("svc.yaml", []byte(one))
	if err != nil {
		t.Fatal(err)
	}
	s := got[0].Service
	if len(got) != 1 || got[0].Line != 2 || s.Name != "web" || s.Selector["com.docker.compose.service"] != "web" ||
		s.Ports[0].NodePort != 30080 || s.Ports[0].TargetPort != 8080 || s.ExternalIPs[0] != "192.0.2.7" ||
		*s.SessionAffinityConfig.ClientIP.TimeoutSeconds != 60 || s.ExternalTrafficPolicy != "Local" {
		t.Fatalf("parsed %+v", got)
	}
	list := "- name: a\n  selector: {app: a}\n  ports: [{port: 1}]\n- name: b\n  selector: {app: b}\n  ports: [{port: 2}]\n" +
		"---\nname: c\nselector: {app: c}\nports: [{port: 3}]\n"
	got, err = ParseFile("l.yaml", []byte(list))
	if err != nil || len(got) != 3 || got[1].Service.Name != "b" || got[1].Line != 4 || got[2].Line != 8 {
		t.Fatalf("list: %+v %v", got, err)
	}
	js := `[{"name": "j", "selector": {"app": "j"},
	"ports": [{"port": 53, "protocol": "UDP"}]}]`
	got, err = ParseFile("s.json", []byte(js))
	if err != nil || len(got) != 1 || got[0].Service.Ports[0].Protocol != "UDP" {
		t.Fatalf("json: %+v %v", got, err)
	}
}

func TestParseFileRefuses(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"unknown field", "name: web\nselector: {app: web}\nprots:\n  - port: 80\n", `svc.yaml: line 3: unknown field "prots"`},
		{"unknown nested field", "name: web\nselector: {app: web}\nports:\n  - port: 80\n    target: 8080\n", `line 5: unknown field "target" in ports[0]`},
		{"kubernetes metadata", "apiVersion: v1\nkind: Service\n", `line 1: unknown field "apiVersion"`},
		{"bad yaml", "name: web\n  selector: [\n", "svc.yaml: yaml: line 2"},
		{"wrong type", "name: web\nports:\n  - port: eighty\n", "line 3: cannot unmarshal"},
		{"scalar", "hello\n", "line 1: want an object"},
		{"empty", "\n", "no object in the file"},
		{"twice", "- name: a\n- name: a\n", "line 2: service a is also defined on line 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseFile("svc.yaml", []byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}
