// Package dist holds what `make install` puts on a host besides the
// binaries: the systemd unit (podnetd.service.in, with @BINDIR@ and
// @SYSCONFDIR@ filled in by scripts/install.sh) and the settings file
// /etc/default/podnet (podnet.default). Its tests install into a temporary
// directory, verify the unit with systemd-analyze and uninstall again.
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
