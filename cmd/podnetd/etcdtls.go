package main

import (
	"log/slog"
	"strings"
)

// warnInsecureEtcd says, at start and at Warn level, when podnetd talks to
// an external etcd that anyone on the network could talk to as well:
// without TLS, or with TLS but no client certificate (so the cluster
// cannot be requiring one). Whoever can write podnet's keys re-routes
// every host's containers.
func warnInsecureEtcd(cfg *config, log *slog.Logger) {
	if len(cfg.EtcdEndpoints) == 0 {
		return // embedded: a root-only unix socket
	}
	var plain []string
	for _, ep := range cfg.EtcdEndpoints {
		if !strings.HasPrefix(ep, "https://") && !strings.HasPrefix(ep, "unix") {
			plain = append(plain, ep)
		}
	}
	switch {
	case len(plain) > 0:
		log.Warn("INSECURE: podnetd talks to etcd without TLS: anyone who reaches these endpoints can read and rewrite podnet's state and re-route every host's containers. Run etcd with TLS and --client-cert-auth (scripts/etcd-certs.sh makes the certificates) and give podnetd https:// endpoints with --etcd-cacert, --etcd-cert and --etcd-key",
			"endpoints", strings.Join(plain, ","))
	case cfg.EtcdCert == "":
		log.Warn("INSECURE: podnetd talks to etcd over TLS without a client certificate, so etcd cannot be requiring one: anyone who reaches it can rewrite podnet's state. Run etcd with --client-cert-auth and give podnetd --etcd-cert and --etcd-key (scripts/etcd-certs.sh)",
			"endpoints", strings.Join(cfg.EtcdEndpoints, ","))
	}
}
