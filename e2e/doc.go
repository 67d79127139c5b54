//go:build e2e

// Package e2e holds podnet's black-box tests: real dockerd, real etcd and the
// built podnetd/podnetctl binaries on "hosts" that are network namespaces of
// this machine, made by scripts/lab.sh. Nothing here imports podnet's Go
// packages; the tests drive the binaries, Docker and the kernel from outside.
//
// Run, as root, after `make build` (which puts podnetd and podnetctl in bin/):
//
//	go test -tags e2e -v -timeout 30m ./e2e/
//
// or `make e2e`. Tests that need podnetd call RequirePodnetd and fail with a
// clear message when the binary is missing; the lab's own tests
// (TestLab*) need only dockerd, etcd and busybox-static (scripts/deps.sh).
//
// # The lab
//
// Up(t, n, etcd) runs `scripts/lab.sh up n --etcd etcd` and registers
// `scripts/lab.sh down` in t.Cleanup; Shared(t, n, etcd) reuses one lab across
// tests of the binary (TestMain takes it down at the end). Only one lab exists
// at a time, so tests that use one must not call t.Parallel (the QEMU guest
// scenarios, which use none, run in parallel with each other). Host names are
// h1..hN; a host's commands run through Lab.Exec (its netns and mount
// namespace, with DOCKER_HOST and PODNET_SOCKET pointing at its own dockerd
// and podnetd); Lab.Client runs commands in the "outside client" netns. The
// etcd cluster requires client certificates: etcdctl run through Exec or
// Client gets the lab's admin certificate from ETCDCTL_CACERT/CERT/KEY, and
// $LAB_ETCD_ENDPOINTS names the etcd of that host (with an embedded etcd,
// its root-only socket). See scripts/lab.sh for the addresses and the layout.
//
// # Environment
//
//	PODNET_BIN        directory holding podnetd and podnetctl (default <repo>/bin)
//	PODNET_E2E_KEEP   1: leave the last lab up after the tests, for debugging
//	                  (the next Up, or `scripts/lab.sh down`, removes it)
//	PODNET_E2E_FAKE_HOSTS  stand-in hosts TestThousandHosts adds (default 1000;
//	                  its RSS bound applies up to 1000)
//	PODNET_LAB_SH     the lab script (default <repo>/scripts/lab.sh)
//	PODNET_OLD_BIN, PODNET_OLD_REV  the podnetd TestRollingUpgrade starts from
//	                  (ready binaries, or a commit to build; default the last
//	                  release before schema versions)
//	PODNET_PRE_NDP_BIN, PODNET_PRE_NDP_REV  the same for TestIPv6RollingUpgrade
//	                  (default the last commit with IPv6 proxy entries and
//	                  without the DNS and selection indexes)
//	LAB_DIR           lab state directory (default /tmp/podnet-lab)
//	LAB_NAME          prefix of the lab's netns, links and rules (default lab)
//	LAB_NET           underlay /24 as three octets (default 10.250.0)
//	LAB_TIMEOUT       seconds lab.sh waits for each daemon (default 60)
//	LAB_EXTERNAL_IPS  the lab podnetds' --external-ip-cidrs (default the
//	                  lab's /24; the external-IP tests need it)
//	PODNETD_ARGS      extra podnetd flags for every host (e.g. --log-level=debug)
//	LAB_DOCKERD_ARGS  extra dockerd flags for every host (e.g. --live-restore)
//	DOCKER, DOCKERD   docker CLI and daemon binaries (default /usr/bin/docker, dockerd)
//
// When a test fails, the cleanup logs the tail of every host's podnetd and
// dockerd log before taking the lab down.
package e2e
