// Package dist holds what `make install` puts on a host besides the
// binaries: the systemd unit (podnetd.service.in, with @BINDIR@ and
// @SYSCONFDIR@ filled in by scripts/install.sh) and the settings file
// /etc/default/podnet (podnet.default), and the Prometheus rules
// (prometheus/podnet-rules.yml, installed in $PREFIX/share/podnet/). Its
// tests install into a temporary directory, verify the unit with
// systemd-analyze and uninstall again, and check the rules with promtool:
// `promtool check rules`, the unit tests in prometheus/*_test.yml (every
// alert firing and not), and conventions promtool does not know.
//
// # Rules
//
//   - Operators load the file as it is. It assumes the scrape job "podnet"
//     the README sets up; per-host alerts keep the target's labels,
//     cluster-wide ones keep only cluster and job. Series a rule needs and
//     podnetd did not export were added to the package that knows the fact
//     (podnet_hosts, podnet_etcd_view_last_heard_timestamp_seconds,
//     podnet_ipam_pool_usable_addresses, podnet_wireguard_peers,
//     podnet_lb_unannounced_addresses) rather than approximated in PromQL;
//     TestRulesConventions keeps every series a rule reads among those
//     internal/metrics declares.
//   - Host down is seen twice: Prometheus failing to scrape podnetd (up ==
//     0, which says which host), and the other hosts' view of the liveness
//     leases (podnet_hosts{state="down"}), which also catches a podnetd
//     that runs but cannot renew its lease, and a host nobody scrapes.
//   - Thresholds follow the project's measured targets (README,
//     Benchmarks) and podnetd's own periods; the header of the rule file
//     lists them. for windows outlast a podnetd restart.
//
// # Design notes
//
//   - Type=notify: podnetd sends READY=1 only when it can serve Docker
//     (plugin socket open, etcd reached, schema checked, state restored).
//     With Before=docker.service, dockerd then starts only once podnet can
//     answer for the --restart=always containers it restores; a plain
//     Type=simple would let dockerd start while podnetd still waits for
//     etcd, and those containers would fail to start and stay down.
//   - No Requires= either way: podnetd and dockerd restart independently,
//     and containers keep their network while podnetd is down.
//   - TimeoutStartSec bounds how long an unreachable etcd holds dockerd back
//     at boot; StartLimitIntervalSec=0 with Restart=always keeps podnetd
//     retrying for as long as it takes.
//   - Settings are PODNET_* variables in /etc/default/podnet, the names
//     podnetd already reads for each flag, so the unit has no flags of its
//     own to keep in sync. `make install` never overwrites that file.
package dist
