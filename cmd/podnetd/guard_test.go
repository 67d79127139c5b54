package main

import (
	"log/slog"
	"strings"
	"testing"
)

func TestWarnInsecureEtcd(t *testing.T) {
	for _, tc := range []struct {
		cfg  config
		want string
	}{
		{config{}, ""}, // embedded
		{config{EtcdEndpoints: []string{"http://10.0.0.5:2379"}}, "without TLS"},
		{config{EtcdEndpoints: []string{"https://10.0.0.5:2379", "10.0.0.6:2379"}, EtcdCert: "c"}, "without TLS"},
		{config{EtcdEndpoints: []string{"https://10.0.0.5:2379"}}, "without a client certificate"},
		{config{EtcdEndpoints: []string{"https://10.0.0.5:2379"}, EtcdCert: "c", EtcdKey: "k", EtcdCACert: "ca"}, ""},
	} {
		var b strings.Builder
		warnInsecureEtcd(&tc.cfg, slog.New(slog.NewTextHandler(&b, nil)))
		if got := b.String(); tc.want == "" && got != "" || tc.want != "" && (!strings.Contains(got, tc.want) || !strings.Contains(got, "level=WARN")) {
			t.Errorf("%v: logged %q, want %q", tc.cfg.EtcdEndpoints, got, tc.want)
		}
	}
}
