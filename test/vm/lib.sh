#!/bin/sh
# lib.sh: what the QEMU guest scenarios of scripts/vm.sh share (sourced).
# fail MSG and wait_until DESC SECONDS CMD... ; start_docker starts
# podnetd, containerd and dockerd and imports the test image.
export PATH=/podnet/bin:/usr/sbin:/usr/bin:/sbin:/bin

# docker never hangs a scenario: a stuck command fails it, with the logs.
docker() { timeout "${GUEST_DOCKER_TIMEOUT:-240}" /usr/bin/docker "$@"; }

# dump is what a failure shows; scenarios may add to it (dump_more).
dump() {
	echo "--- podnetd log"
	tail -40 /tmp/podnetd.log
	echo "--- dockerd log"
	tail -20 /tmp/dockerd.log
	echo "--- containerd log"
	tail -10 /tmp/containerd.log
	if command -v dump_more >/dev/null; then dump_more; fi
}

fail() {
	echo "GUEST-FAIL: $*"
	dump
	exit 1
}

# wait_until DESC SECONDS CMD...: poll CMD until it succeeds.
wait_until() {
	desc=$1 secs=$2
	shift 2
	end=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$end" ] && fail "$desc: not true after ${secs}s"
		sleep 0.5
	done
	echo "GUEST: ok: $desc"
}

# start_docker: podnetd (embedded etcd), then containerd on its own (under
# emulation dockerd's wait for the containerd it starts itself can run
# out), then dockerd, then the test image podnet-test/busybox.
start_docker() {
	mkdir -p /run/docker/plugins /var/lib/podnet /var/lib/containerd
	podnetd --host-name vm --data-dir /var/lib/podnet --dns-addr off >/tmp/podnetd.log 2>&1 &
	containerd >/tmp/containerd.log 2>&1 &
	wait_until "containerd serves its socket" 300 test -S /run/containerd/containerd.sock
	DOCKER_RAMDISK=true dockerd --containerd=/run/containerd/containerd.sock >/tmp/dockerd.log 2>&1 &
	wait_until "podnetd serves the plugin socket" 300 test -S /run/docker/plugins/podnet.sock
	wait_until "dockerd answers" 300 docker info
	docker import /podnet/image.tar podnet-test/busybox >/dev/null || fail "docker import"
}
