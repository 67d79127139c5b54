package main

import (
	"encoding/json"
	"testing"

	"github.com/podnet/podnet/store"
)

// The admin API shows this host's records as admin types; their JSON must
// be the records' own (podnetctl -o json shows what etcd holds).
func TestViewsKeepTheRecordsJSON(t *testing.T) {
	for _, c := range []struct {
		json string
		view func([]byte) (any, error)
	}{
		{`{"id":"n1","host":"h1","mode":"vxlan","bridge":"pn-n1","ipv4":[{"pool":"10.1.0.0/16","gateway":"10.1.0.1/16"},{"pool":"10.9.0.0/24"}],"ipv6":[{"pool":"fd00:1::/64","gateway":"fd00:1::1/64"}],"mtu":1450,"internal":true,"masquerade":false,"vni":4096,"options":{"mode":"vxlan"},"created":"2025-03-04T05:06:07Z"}`,
			func(b []byte) (any, error) {
				var n store.Network
				err := json.Unmarshal(b, &n)
				return networkView(n), err
			}},
		{`{"id":"n2","host":"h1","mode":"none","mtu":0,"masquerade":true,"created":"2025-03-04T05:06:07Z"}`,
			func(b []byte) (any, error) {
				var n store.Network
				err := json.Unmarshal(b, &n)
				return networkView(n), err
			}},
		{`{"id":"e1","network":"n1","host":"h1","ipv4":"10.1.0.7/16","ipv6":"fd00:1::7/64","mac":"02:70:0a:01:00:07","hostVeth":"pnhe1","peerVeth":"pnce1","ports":[{"proto":"tcp","hostIP":"127.0.0.1","hostPort":8080,"containerIP":"10.1.0.7","containerPort":80},{"proto":"udp","hostPort":53,"containerIP":"fd00:1::7","containerPort":53}],"created":"2025-03-04T05:06:07Z"}`,
			func(b []byte) (any, error) {
				var e store.Endpoint
				err := json.Unmarshal(b, &e)
				return endpointView(e), err
			}},
		{`{"id":"e3","network":"n1","host":"h1","ipv4":"10.1.0.8/16","mac":"02:70:0a:01:00:08","hostVeth":"pnhe3","peerVeth":"pnce3","cni":{"network":"pods","containerID":"c0ffee","ifname":"eth0","netns":"/run/netns/x"},"created":"2025-03-04T05:06:07Z"}`,
			func(b []byte) (any, error) {
				var e store.Endpoint
				err := json.Unmarshal(b, &e)
				return endpointView(e), err
			}},
		{`{"id":"e2","network":"n2","host":"h1","created":"2025-03-04T05:06:07Z"}`,
			func(b []byte) (any, error) {
				var e store.Endpoint
				err := json.Unmarshal(b, &e)
				return endpointView(e), err
			}},
	} {
		v, err := c.view([]byte(c.json))
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.json {
			t.Errorf("view JSON differs from the record's:\n got %s\nwant %s", got, c.json)
		}
	}
}
