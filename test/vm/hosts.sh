#!/bin/sh
# hosts.sh: several podnet hosts inside the QEMU guest (sourced after
# lib.sh), for the multi-host scenarios of scripts/vm.sh. The layout
# follows scripts/lab.sh on a smaller scale:
#
#   - the underlay is bridge lan0 in the guest's own namespace
#     (10.99.0.1/24), which also runs the cluster's etcd (plain HTTP on
#     10.99.0.1:2379: nothing outside the guest can reach it);
#   - host I is netns hI at 10.99.0.(10+I) (default route via 10.99.0.1)
#     with a persistent mount namespace /run/vmhosts/hI.mnt in which /sys
#     is the netns's own and /run/docker/plugins and /run/podnet are the
#     host's own (its podnetd's sockets);
#   - podnetd_start I runs host I's podnetd (state in /var/lib/podnet-hI,
#     log /tmp/hI-podnetd.log); dockerd_start I its containerd and dockerd
#     (API at /run/docker-hI.sock), both in the host's mount namespace:
#     dockerd mounts the containers' root file systems there, where runc
#     must see them.
#
# Functions: hosts_up N, host_exec I CMD..., podnetd_start I [FLAGS...]
# (flags replace those of the last start when given), podnetd_stop I
# [SIG], dockerd_start I, dk I DOCKER-ARGS..., pctl I PODNETCTL-ARGS...
HOSTS_ETCD=http://10.99.0.1:2379
HOSTS_RUN=/run/vmhosts

host_ip() { echo "10.99.0.$((10 + $1))"; }

# host_exec I CMD...: CMD in host I's network and mount namespaces.
host_exec() {
	i=$1
	shift
	nsenter --mount="$HOSTS_RUN/h$i.mnt" --net="/run/netns/h$i" -- "$@"
}

dk() {
	i=$1
	shift
	timeout "${GUEST_DOCKER_TIMEOUT:-240}" /usr/bin/docker -H "unix:///run/docker-h$i.sock" "$@"
}

pctl() {
	i=$1
	shift
	timeout 60 podnetctl --socket "/run/podnet-h$i.sock" "$@"
}

# hosts_up N: the underlay, etcd and N host namespaces.
hosts_up() {
	n=$1
	ip link add lan0 type bridge
	ip addr add 10.99.0.1/24 dev lan0
	ip link set lan0 up
	mkdir -p "$HOSTS_RUN"
	mount -t tmpfs vmhosts "$HOSTS_RUN"
	mount --make-private "$HOSTS_RUN"
	etcd --name vm --data-dir /tmp/etcd --listen-client-urls "$HOSTS_ETCD" --advertise-client-urls "$HOSTS_ETCD" \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster vm=http://127.0.0.1:2380 >/tmp/etcd.log 2>&1 &
	i=1
	while [ "$i" -le "$n" ]; do
		host_up "$i"
		i=$((i + 1))
	done
	wait_until "etcd answers" 120 etcdctl --endpoints "$HOSTS_ETCD" endpoint health
}

host_up() {
	i=$1
	ip netns add "h$i"
	ip link add "u$i" type veth peer name eth0 netns "h$i"
	ip link set "u$i" master lan0 up
	ip -n "h$i" link set lo up
	ip -n "h$i" link set eth0 up
	ip -n "h$i" addr add "$(host_ip "$i")/24" dev eth0
	ip -n "h$i" route add default via 10.99.0.1
	mkdir -p "/tmp/h$i-plugins" "/tmp/h$i-podnet" "/var/lib/docker/h$i" "/var/lib/podnet-h$i"
	touch "$HOSTS_RUN/h$i.mnt"
	nsenter --net="/run/netns/h$i" -- unshare --mount="$HOSTS_RUN/h$i.mnt" --propagation private -- /bin/sh -ec "
		mount -t sysfs sysfs /sys
		mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
		mkdir -p /run/docker/plugins /run/podnet
		mount --bind /tmp/h$i-plugins /run/docker/plugins
		mount --bind /tmp/h$i-podnet /run/podnet"
}

# podnetd_start I [FLAGS...]: start host I's podnetd and wait until its
# plugin socket answers (or it exits: then fail, with its log).
podnetd_start() {
	i=$1
	shift
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" >"/tmp/h$i-podnetd.flags"
	fi
	set -- $(cat "/tmp/h$i-podnetd.flags" 2>/dev/null)
	rm -f "/tmp/h$i-plugins/podnet.sock"
	# nsenter itself in the background (not host_exec: $! would be a
	# subshell's, and killing it would leave podnetd running).
	nsenter --mount="$HOSTS_RUN/h$i.mnt" --net="/run/netns/h$i" -- podnetd --host-name "h$i" --data-dir "/var/lib/podnet-h$i" \
		--etcd-endpoints "$HOSTS_ETCD" --admin-socket "/run/podnet-h$i.sock" --docker-host "unix:///run/docker-h$i.sock" \
		--dns-addr off --metrics-addr off "$@" >>"/tmp/h$i-podnetd.log" 2>&1 &
	echo $! >"/tmp/h$i-podnetd.pid"
	start=$(date +%s)
	next=$((start + 20))
	until pctl "$i" status -o json 2>/dev/null | grep -q '"ready": *true'; do
		kill -0 "$(cat "/tmp/h$i-podnetd.pid")" 2>/dev/null || fail "h$i: podnetd exited: $(tail -5 "/tmp/h$i-podnetd.log")"
		now=$(date +%s)
		[ "$now" -ge $((start + 240)) ] && fail "h$i: podnetd not ready after 240s"
		if [ "$now" -ge "$next" ]; then
			echo "vm: h$i: podnetd not ready after $((now - start))s: $(tail -1 "/tmp/h$i-podnetd.log" | cut -c1-200)"
			next=$((now + 20))
		fi
		sleep 0.5
	done
	echo "GUEST: ok: h$i: podnetd ready ($*)"
}

# podnetd_stop I [SIG]: stop host I's podnetd (TERM by default) and wait
# for it to exit.
podnetd_stop() {
	i=$1
	pid=$(cat "/tmp/h$i-podnetd.pid")
	kill "-${2:-TERM}" "$pid" 2>/dev/null
	end=$(($(date +%s) + 60))
	while kill -0 "$pid" 2>/dev/null; do
		[ "$(date +%s)" -ge "$end" ] && fail "h$i: podnetd (pid $pid) does not stop"
		sleep 0.2
	done
}

# dockerd_start I: host I's containerd and dockerd, with the test image.
dockerd_start() {
	i=$1
	c=/run/containerd-h$i
	host_exec "$i" containerd --root "/var/lib/docker/h$i-containerd" --state "$c" --address "$c/containerd.sock" \
		>"/tmp/h$i-containerd.log" 2>&1 &
	wait_until "h$i: containerd serves its socket" 300 test -S "$c/containerd.sock"
	host_exec "$i" env DOCKER_RAMDISK=true dockerd --containerd="$c/containerd.sock" \
		--data-root "/var/lib/docker/h$i" --exec-root "/run/docker-h$i" -H "unix:///run/docker-h$i.sock" \
		--pidfile "/run/docker-h$i.pid" --bridge none >"/tmp/h$i-dockerd.log" 2>&1 &
	wait_until "h$i: dockerd answers" 300 dk "$i" info
	dk "$i" import /podnet/image.tar podnet-test/busybox >/dev/null || fail "h$i: docker import"
}
