#!/usr/bin/env bash
# lab.sh: N Docker hosts on one machine, for podnet's multi-host tests.
#
# usage: scripts/lab.sh COMMAND [ARGS]
#   up N [--etcd embedded|cluster]  bring up N hosts (1..5); default --etcd cluster
#   down                            remove everything the lab made; idempotent
#   status                          show what is up
#   exec H CMD...                   run CMD on host H (h1..h5 or 1..5)
#   client CMD...                   run CMD in the "outside client" netns
#   podnetd-stop H [--kill]         SIGTERM (or SIGKILL) H's podnetd
#   podnetd-start H                 (re)start H's podnetd with the same flags
#                                   (and $PODNETD_BIN, if set, as the binary:
#                                   a rolling upgrade starts a new build)
#   dockerd-stop H [--kill]         SIGTERM H's dockerd (it stops its containers),
#                                   or SIGKILL it (containerd dies with it;
#                                   shims and containers live on until the
#                                   next dockerd-start, which stops them
#                                   unless LAB_DOCKERD_ARGS has --live-restore)
#   dockerd-start H                 (re)start H's dockerd with the same flags
#   podman H ARGS...                run podman on host H with the host's own
#                                   configuration and storage (see below)
#   etcd-stop M [--kill]            stop etcd member M (1..3, cluster mode)
#   etcd-start M                    restart etcd member M
#
# Layout. A bridge ${LAB_NAME}-br (${LAB_NET}.1/24) in the root netns is the
# underlay. Host i is netns ${LAB_NAME}-hi at ${LAB_NET}.(10+i) plus a
# persistent mount namespace ($LAB_DIR/ns/hi.mnt) in which /sys is the
# netns's own sysfs (cgroups kept), /run, /var/lib and /dev/shm are
# tmpfs of its own (nothing a host's daemons, podman or cnitool keep there
# reaches the machine or another lab, and a directory another lab's
# `down` removes cannot take a mount with it), /run/docker/plugins is
# $LAB_DIR/hi/plugins and /etc/docker is $LAB_DIR/hi/etc-docker. Host
# i runs podnetd (started first) and its own dockerd (plus containerd) in
# both namespaces. The client netns ${LAB_NAME}-client is ${LAB_NET}.2. With
# --etcd cluster, etcd members 1..3 run in netns ${LAB_NAME}-etcdM at
# ${LAB_NET}.(200+M), with TLS and client-certificate authentication for
# clients and peers (scripts/etcd-certs.sh makes the CA and certificates in
# $LAB_DIR/pki: one per member, one per host for its podnetd, one "admin"
# for etcdctl); with --etcd embedded, every podnetd runs its own embedded
# etcd on a root-only unix socket in its data dir (hosts then share no
# state: use it with N=1). Root netns FORWARD accepts bridge-to-bridge lab traffic and
# rejects anything between the lab and other interfaces (nothing leaves the
# machine, nothing is NATed). `up` imports podnet-test/busybox (tag bb) into
# every dockerd, checks `docker run --rm` works, and refuses to run over an
# existing lab. dockerd runs with --cgroup-parent /${LAB_NAME}-hi; `down`
# also kills whatever is left in the lab's netns and cgroups.
#
# exec runs CMD inside host H's network and mount namespaces with
# DOCKER_HOST, PODNET_SOCKET, LAB_HOST, LAB_HOST_IP and LAB_ETCD_ENDPOINTS
# (not ETCDCTL_ENDPOINTS: etcdctl 3.4 then refuses an explicit --endpoints;
# with --etcd embedded, H's own unix socket) set, ETCDCTL_CACERT,
# ETCDCTL_CERT and ETCDCTL_KEY (the admin certificate) with --etcd cluster,
# and $PODNET_BIN plus a `docker` for $DOCKER first on PATH. client runs
# CMD in the client netns (root mount namespace), same PATH and etcdctl
# settings.
#
# podman runs on a host with everything under $LAB_DIR/hi/podman: its
# containers.conf (CNI backend, plugins from $LAB_DIR/cni-bin, where
# $PODNET_BIN/podnet-cni is "podnet", then /usr/lib/cni; network configs
# in $LAB_DIR/hi/podman/net.d; the ulimits this machine's hard limits
# allow), storage, runtime and temporary directories (what it keeps in
# /run, /var/lib and /dev/shm stays in the host's private tmpfs). `run` and
# `create` get --cgroup-parent /${LAB_NAME}-hi, so `down` finds their
# containers (and conmon) with dockerd's. The first call on a host writes
# that configuration. $LAB_DIR/cni-bin is also where cnitool (or any CNI
# runtime) finds podnet's plugin: CNI_PATH=$LAB_DIR/cni-bin:/usr/lib/cni.
#
# Env:
#   LAB_DIR      state directory (default /tmp/podnet-lab; keep it short:
#                unix socket paths under it must fit 107 bytes)
#   LAB_NAME     prefix of every netns, link, cgroup and rule (default lab;
#                1-8 of a-z0-9, starting with a letter)
#   LAB_NET      first three octets of the underlay /24 (default 10.250.0)
#   PODNET_BIN   directory with podnetd and podnetctl (default <repo>/bin);
#                without podnetd, hosts run dockerd only (with a warning)
#   PODNETD_ARGS extra podnetd flags, split on spaces (e.g. --log-level=debug)
#   LAB_DOCKERD_ARGS extra dockerd flags, split on spaces (e.g. --live-restore)
#   DOCKER       docker CLI (default /usr/bin/docker when present)
#   DOCKERD      dockerd binary (default /usr/sbin/dockerd)
#   LAB_TIMEOUT  seconds to wait for each daemon to get ready (default 60)
#   LAB_EXTERNAL_IPS podnetd's --external-ip-cidrs (default the lab's /24;
#                empty: none)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly SELF=$REPO/scripts/lab.sh
readonly MAX_HOSTS=5
readonly ETCD_MEMBERS=3
readonly ETCD_CLIENT_PORT=2379
readonly ETCD_PEER_PORT=2380

# ---------------------------------------------------------------- helpers

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"; }

T0=${EPOCHREALTIME/[.,]/}
# log MSG: progress, stamped with the seconds since the command started.
log() {
	local now=${EPOCHREALTIME/[.,]/}
	printf 'lab: [%5.1fs] %s\n' "$(((now - T0) / 100000))e-1" "$*"
}
warn() { echo "lab: warning: $*" >&2; }
die() {
	echo "lab: error: $*" >&2
	exit 1
}

default_docker() {
	if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; else command -v docker || echo docker; fi
}

# load_config: settings from the environment, then from the state file of a
# lab that is up (which wins: it describes what exists).
load_config() {
	LAB_DIR=${LAB_DIR:-/tmp/podnet-lab}
	LAB_DIR=${LAB_DIR%/}
	LAB_NAME=${LAB_NAME:-lab}
	LAB_NET=${LAB_NET:-10.250.0}
	PODNET_BIN=${PODNET_BIN:-$REPO/bin}
	PODNETD_ARGS=${PODNETD_ARGS:-}
	LAB_DOCKERD_ARGS=${LAB_DOCKERD_ARGS:-}
	DOCKER=${DOCKER:-$(default_docker)}
	DOCKERD=${DOCKERD:-$(command -v dockerd || echo /usr/sbin/dockerd)}
	LAB_TIMEOUT=${LAB_TIMEOUT:-60}
	LAB_N=0
	LAB_ETCD=
	STATE=$LAB_DIR/lab.env
	if [[ -f $STATE ]]; then
		# shellcheck source=/dev/null
		source "$STATE"
	fi
	[[ $LAB_DIR == /* && $LAB_DIR != / && $LAB_DIR =~ ^[A-Za-z0-9._/-]+$ ]] ||
		die "LAB_DIR=$LAB_DIR: want an absolute path of [A-Za-z0-9._/-], not /"
	((${#LAB_DIR} <= 60)) || die "LAB_DIR=$LAB_DIR is too long (unix socket paths under it must fit 107 bytes)"
	[[ $LAB_NAME =~ ^[a-z][a-z0-9]{0,7}$ ]] ||
		die "LAB_NAME=$LAB_NAME: want 1-8 of [a-z0-9] starting with a letter (link names fit 15 bytes)"
	[[ $LAB_NET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "LAB_NET=$LAB_NET: want three octets, e.g. 10.250.0"
	[[ $LAB_TIMEOUT =~ ^[0-9]+$ ]] || die "LAB_TIMEOUT=$LAB_TIMEOUT: want seconds"
	BR=${LAB_NAME}-br
	FW_TAG=podnet-lab:$LAB_NAME
	PKI=$LAB_DIR/pki
	ETCD_ENDPOINTS=$(etcd_endpoints)
	LAB_EXTERNAL_IPS=${LAB_EXTERNAL_IPS-$LAB_NET.0/24}
}

etcd_endpoints() {
	local m eps=()
	for ((m = 1; m <= ETCD_MEMBERS; m++)); do eps+=("https://$(etcd_ip "$m"):$ETCD_CLIENT_PORT"); done
	local IFS=,
	echo "${eps[*]}"
}

# embedded_endpoint I: host I's embedded etcd (podnetd's default: a unix
# socket in its --data-dir).
embedded_endpoint() { echo "unix://$(host_dir "$1")/podnet/etcd.sock"; }

# make_certs N: the cluster's CA, a certificate per member, per host and
# for etcdctl (scripts/etcd-certs.sh; idempotent).
make_certs() {
	local n=$1 m i certs=$REPO/scripts/etcd-certs.sh
	"$certs" "$PKI" ca >/dev/null
	for ((m = 1; m <= ETCD_MEMBERS; m++)); do "$certs" "$PKI" member "etcd$m" "$(etcd_ip "$m")" 127.0.0.1 >/dev/null; done
	for ((i = 1; i <= n; i++)); do "$certs" "$PKI" client "h$i" >/dev/null; done
	"$certs" "$PKI" client admin >/dev/null
}

# etcdctl_tls: etcdctl's flags for the admin certificate.
etcdctl_tls() { printf '%s\n' --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key"; }

host_ns() { echo "$LAB_NAME-h$1"; }
host_ip() { echo "$LAB_NET.$((10 + $1))"; }
host_dir() { echo "$LAB_DIR/h$1"; }
host_mnt() { echo "$LAB_DIR/ns/h$1.mnt"; }
etcd_ns() { echo "$LAB_NAME-etcd$1"; }
etcd_ip() { echo "$LAB_NET.$((200 + $1))"; }
etcd_dir() { echo "$LAB_DIR/etcd$1"; }
client_ns() { echo "$LAB_NAME-client"; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, dockerd)"; }

need_up() { [[ -f $STATE ]] || die "no lab is up in $LAB_DIR (run: scripts/lab.sh up N)"; }

# host_index ARG: h3 or 3 -> 3, checked against the lab's size.
host_index() {
	local i=${1#h}
	if ! [[ $i =~ ^[1-9]$ ]] || ((i > LAB_N)); then die "no host '$1' (this lab has h1..h$LAB_N)"; fi
	echo "$i"
}

member_index() {
	[[ $LAB_ETCD == cluster ]] || die "etcd members exist only with --etcd cluster (this lab: $LAB_ETCD)"
	[[ $1 =~ ^[1-3]$ ]] || die "no etcd member '$1' (want 1..$ETCD_MEMBERS)"
	echo "$1"
}

# alive PID: the process exists and is not a zombie (PID 1 here reaps late).
# (Builtins only: down calls this a lot.)
alive() {
	local pid=$1 stat
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# ours PID: the process's command line mentions the lab directory (guards
# against a recycled PID).
ours() {
	local args
	alive "$1" || return 1
	{ mapfile -d '' args <"/proc/$1/cmdline"; } 2>/dev/null || return 1
	[[ " ${args[*]} " == *"$LAB_DIR/"* ]]
}

# read_pid FILE: set pid to the number in FILE (pid files often lack a
# final newline, on which read fails even though it read the number).
read_pid() {
	pid=
	{ read -r pid <"$1" || true; } 2>/dev/null
	[[ $pid =~ ^[0-9]+$ ]]
}

# spawned_alive FILE: the process whose PID `spawn` wrote to FILE is alive
# (it may not have exec'd the daemon yet, so no check of its command line).
spawned_alive() {
	local pid
	read_pid "$1" && alive "$pid"
}

# pidfile_pid FILE: the PID recorded in FILE if that process is ours and alive.
pidfile_pid() {
	local pid
	read_pid "$1" || return 1
	ours "$pid" || return 1
	echo "$pid"
}

# wait_for DESC SECONDS CMD...: poll CMD until it succeeds, or die. CMD may
# exit 2 to abort at once (e.g. the daemon died).
wait_for() {
	local desc=$1 secs=$2 rc
	shift 2
	local deadline=$((SECONDS + secs))
	while true; do
		rc=0
		"$@" || rc=$?
		((rc == 0)) && return 0
		((rc == 2)) && die "$desc: exited before getting ready"
		((SECONDS < deadline)) || die "$desc: not ready after ${secs}s"
		sleep 0.1
	done
}

# wait_gone SECONDS PID...: wait until none of PIDs is alive; 1 on timeout.
wait_gone() {
	local secs=$1 pid left
	shift
	local deadline=$((SECONDS + secs))
	while true; do
		left=0
		for pid in "$@"; do alive "$pid" && left=1; done
		((left == 0)) && return 0
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# stop_pid NAME PID SIG GRACE: send SIG, wait GRACE seconds, then SIGKILL.
stop_pid() {
	local name=$1 pid=$2 sig=$3 grace=$4
	alive "$pid" || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	if ! wait_gone "$grace" "$pid"; then
		warn "$name (pid $pid) still running ${grace}s after SIG$sig: killing it"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone 10 "$pid" || warn "$name (pid $pid) survives SIGKILL"
	fi
}

tail_log() {
	[[ -f $1 ]] || return 0
	echo "--- last lines of $1:" >&2
	tail -n "${2:-25}" "$1" >&2
	echo "---" >&2
}

# spawn LOG PIDFILE CMD...: start CMD detached (own session, stdin from
# /dev/null, output appended to LOG) and record its PID. setsid does not fork
# here (a background job of a non-interactive shell is no group leader), and
# nsenter/env exec, so the PID is the daemon's own.
spawn() {
	local logf=$1 pidf=$2
	shift 2
	(cd / && exec setsid "$@" </dev/null >>"$logf" 2>&1) &
	echo $! >"$pidf"
}

# scrubbed_env PREFIX: `env -u` arguments removing every PREFIX* variable, so
# daemons that read their flags from the environment (podnetd PODNET_*, etcd
# ETCD_*) see only the flags given.
scrubbed_env() {
	local v args=(env)
	for v in $(compgen -e); do [[ $v == "$1"* ]] && args+=(-u "$v"); done
	printf '%s\n' "${args[@]}"
}

docker_h() {
	local i=$1
	shift
	"$DOCKER" -H "unix://$(host_dir "$i")/docker.sock" "$@"
}

# ---------------------------------------------------------------- network

# ensure_dir DIR: mkdir -p DIR, remembering it for `down` if we created it.
ensure_dir() {
	[[ -d $1 ]] && return 0
	mkdir -p "$1"
	echo "$1" >>"$LAB_DIR/created-dirs"
}

# add_node NS ROOTIF ADDR: netns NS on the lab bridge through veth ROOTIF
# (eth0 inside) with ADDR/24 and a default route via the bridge.
add_node() {
	local ns=$1 rootif=$2 addr=$3
	ip netns add "$ns"
	ip link add "$rootif" type veth peer name eth0 netns "$ns"
	ip link set "$rootif" master "$BR" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "$LAB_NET.1"
}

# iptables_backends: the root netns's iptables front-ends to program: the
# default one, plus legacy if its filter table drops forwarded traffic.
iptables_backends() {
	echo iptables
	if command -v iptables-legacy >/dev/null && grep -qx filter /proc/net/ip_tables_names 2>/dev/null &&
		iptables-legacy -w -S FORWARD 2>/dev/null | grep -q -- '^-P FORWARD DROP'; then
		echo iptables-legacy
	fi
}

fw_add() {
	local ipt
	for ipt in $(iptables_backends); do
		# Inserted in reverse: the accept ends up first.
		"$ipt" -w -I FORWARD -o "$BR" ! -i "$BR" -m comment --comment "$FW_TAG" -j REJECT
		"$ipt" -w -I FORWARD -i "$BR" ! -o "$BR" -m comment --comment "$FW_TAG" -j REJECT
		"$ipt" -w -I FORWARD -i "$BR" -o "$BR" -m comment --comment "$FW_TAG" -j ACCEPT
	done
}

fw_del() {
	local ipt rule
	for ipt in iptables iptables-legacy; do
		command -v "$ipt" >/dev/null || continue
		[[ $ipt == iptables-legacy ]] && ! grep -qx filter /proc/net/ip_tables_names 2>/dev/null && continue
		# iptables-nft prints the comment quoted, legacy does not; the tag has
		# no spaces, so dropping the quotes leaves a plain list of words.
		while rule=$("$ipt" -w -S FORWARD 2>/dev/null | grep -m1 -E -- "--comment \"?$FW_TAG\"? "); do
			rule=${rule//\"/}
			# shellcheck disable=SC2086 # the rule is a list of words
			"$ipt" -w -D ${rule#-A } || break
		done
	done
}

net_up() {
	local i m
	ip link add "$BR" type bridge
	ip addr add "$LAB_NET.1/24" dev "$BR"
	ip link set "$BR" up
	fw_add
	add_node "$(client_ns)" "$LAB_NAME-client" "$LAB_NET.2"
	for ((i = 1; i <= LAB_N; i++)); do add_node "$(host_ns "$i")" "$(host_ns "$i")" "$(host_ip "$i")"; done
	if [[ $LAB_ETCD == cluster ]]; then
		for ((m = 1; m <= ETCD_MEMBERS; m++)); do add_node "$(etcd_ns "$m")" "$(etcd_ns "$m")" "$(etcd_ip "$m")"; done
	fi
}

# mntns_up I: host I's persistent mount namespace (see the header).
mntns_up() {
	local i=$1 h
	h=$(host_dir "$i")
	mkdir -p "$h/plugins" "$h/etc-docker" "$h/.cgroup"
	touch "$(host_mnt "$i")"
	# sysfs must be mounted from inside the netns to show its devices.
	# shellcheck disable=SC2016 # the script expands $1 itself
	nsenter --net="/run/netns/$(host_ns "$i")" -- \
		unshare --mount="$(host_mnt "$i")" --propagation private -- /bin/sh -euc '
			h=$1
			mount --rbind /sys/fs/cgroup "$h/.cgroup"
			mount -t sysfs sysfs /sys
			mount --move "$h/.cgroup" /sys/fs/cgroup
			mount -t tmpfs -o mode=0755 tmpfs /run
			mount -t tmpfs -o mode=0755 tmpfs /var/lib
			mount -t tmpfs -o mode=1777 tmpfs /dev/shm
			mkdir -p /run/docker/plugins /run/containerd
			chmod 0711 /run/containerd
			mount --bind "$h/plugins" /run/docker/plugins
			mount --bind "$h/etc-docker" /etc/docker
		' sh "$h"
}

# ---------------------------------------------------------------- etcd

etcd_start() {
	local m=$1 e i cluster=() args
	e=$(etcd_dir "$m")
	mkdir -p "$e"
	for ((i = 1; i <= ETCD_MEMBERS; i++)); do cluster+=("etcd$i=https://$(etcd_ip "$i"):$ETCD_PEER_PORT"); done
	cluster=("$(IFS=, && echo "${cluster[*]}")")
	args=(--name "etcd$m" --data-dir "$e/data"
		--listen-client-urls "https://$(etcd_ip "$m"):$ETCD_CLIENT_PORT,https://127.0.0.1:$ETCD_CLIENT_PORT"
		--advertise-client-urls "https://$(etcd_ip "$m"):$ETCD_CLIENT_PORT"
		--listen-peer-urls "https://$(etcd_ip "$m"):$ETCD_PEER_PORT"
		--initial-advertise-peer-urls "https://$(etcd_ip "$m"):$ETCD_PEER_PORT"
		--initial-cluster "${cluster[0]}" --initial-cluster-token "$LAB_NAME-etcd"
		--initial-cluster-state new --logger zap --log-outputs stderr
		--cert-file "$PKI/etcd$m.crt" --key-file "$PKI/etcd$m.key" --trusted-ca-file "$PKI/ca.crt" --client-cert-auth
		--peer-cert-file "$PKI/etcd$m.crt" --peer-key-file "$PKI/etcd$m.key" --peer-trusted-ca-file "$PKI/ca.crt"
		--peer-client-cert-auth)
	local envargs
	mapfile -t envargs < <(scrubbed_env ETCD_)
	pidfile_pid "$e/etcd.pid" >/dev/null && die "etcd$m is already running (pid $(<"$e/etcd.pid"))"
	spawn "$e/etcd.log" "$e/etcd.pid" nsenter --net="/run/netns/$(etcd_ns "$m")" -- \
		"${envargs[@]}" /usr/bin/etcd "${args[@]}"
	log "etcd$m started (pid $(<"$e/etcd.pid"), $(etcd_ip "$m"))"
}

# etcd_answers M: member M serves /version (no quorum needed).
etcd_answers() {
	local e
	e=$(etcd_dir "$1")
	spawned_alive "$e/etcd.pid" || { tail_log "$e/etcd.log" && return 2; }
	nsenter --net="/run/netns/$(client_ns)" -- curl -fsS --max-time 1 --cacert "$PKI/ca.crt" \
		--cert "$PKI/admin.crt" --key "$PKI/admin.key" \
		"https://$(etcd_ip "$1"):$ETCD_CLIENT_PORT/version" >/dev/null 2>&1
}

etcd_healthy() {
	local tls
	mapfile -t tls < <(etcdctl_tls)
	nsenter --net="/run/netns/$(client_ns)" -- etcdctl --endpoints "$ETCD_ENDPOINTS" "${tls[@]}" \
		--dial-timeout 1s --command-timeout 2s endpoint health >/dev/null 2>&1
}

etcd_stop() {
	local m=$1 sig=$2 e pid
	e=$(etcd_dir "$m")
	pid=$(pidfile_pid "$e/etcd.pid") || { log "etcd$m is not running"; return 0; }
	stop_pid "etcd$m" "$pid" "$sig" 10
	log "etcd$m stopped (pid $pid, SIG$sig)"
}

# ---------------------------------------------------------------- podnetd

podnetd_args() {
	local i=$1 bin=$2 h
	h=$(host_dir "$i")
	local args=(--host-name "h$i" --data-dir "$h/podnet" --plugin-socket "$h/plugins/podnet.sock"
		--admin-socket "$h/podnet.sock" --docker-host "unix://$h/docker.sock")
	[[ $LAB_ETCD == cluster ]] && args+=(--etcd-endpoints "$ETCD_ENDPOINTS" --etcd-cacert "$PKI/ca.crt"
		--etcd-cert "$PKI/h$i.crt" --etcd-key "$PKI/h$i.key")
	# Services may take external IPs of the lab's /24 (never a host's,
	# etcd's or the bridge's), where podnetd knows the flag (an old
	# release in an upgrade test does not).
	if [[ -n $LAB_EXTERNAL_IPS ]] && "$bin" --help 2>&1 | grep -q -- --external-ip-cidrs; then
		args+=(--external-ip-cidrs "$LAB_EXTERNAL_IPS")
	fi
	# shellcheck disable=SC2206 # PODNETD_ARGS is documented as space-separated
	[[ -n $PODNETD_ARGS ]] && args+=($PODNETD_ARGS)
	printf '%s\n' "${args[@]}"
}

podnetd_start() {
	local i=$1 h args envargs bin=${PODNETD_BIN:-$PODNET_BIN/podnetd}
	h=$(host_dir "$i")
	if [[ ! -x $bin ]]; then
		warn "h$i: $bin not found: host runs without podnetd (build it: make build)"
		return 0
	fi
	pidfile_pid "$h/podnetd.pid" >/dev/null && die "h$i: podnetd is already running (pid $(<"$h/podnetd.pid"))"
	[[ -f $h/podnetd.args ]] || podnetd_args "$i" "$bin" >"$h/podnetd.args"
	mapfile -t args <"$h/podnetd.args"
	mapfile -t envargs < <(scrubbed_env PODNET_)
	mkdir -p "$h/podnet"
	# A socket left by a killed podnetd must not look like readiness.
	rm -f "$h/plugins/podnet.sock"
	spawn "$h/podnetd.log" "$h/podnetd.pid" nsenter --mount="$(host_mnt "$i")" \
		--net="/run/netns/$(host_ns "$i")" -- "${envargs[@]}" "$bin" "${args[@]}"
	wait_for "h$i: podnetd (log $h/podnetd.log)" "$LAB_TIMEOUT" podnetd_ready "$i"
	log "h$i: podnetd ready (pid $(<"$h/podnetd.pid"))"
}

# podnetd_ready I: the plugin socket answers /Plugin.Activate.
podnetd_ready() {
	local h
	h=$(host_dir "$1")
	spawned_alive "$h/podnetd.pid" || { tail_log "$h/podnetd.log" && return 2; }
	[[ -S $h/plugins/podnet.sock ]] || return 1
	curl -fsS --max-time 2 --unix-socket "$h/plugins/podnet.sock" -X POST \
		http://podnet/Plugin.Activate 2>/dev/null | grep -q Implements
}

podnetd_stop() {
	local i=$1 sig=$2 h pid
	h=$(host_dir "$i")
	pid=$(pidfile_pid "$h/podnetd.pid") || { log "h$i: podnetd is not running"; return 0; }
	stop_pid "h$i podnetd" "$pid" "$sig" 30
	log "h$i: podnetd stopped (pid $pid, SIG$sig)"
}

# ---------------------------------------------------------------- dockerd

# dockerd_args I: host I's dockerd flags, one per line (saved for restarts).
dockerd_args() {
	local h
	h=$(host_dir "$1")
	local args=(--data-root "$h/docker" --exec-root "$h/exec" -H "unix://$h/docker.sock"
		--pidfile "$h/docker.pid" --config-file "$h/daemon.json" --cgroup-parent "/$(host_ns "$1")")
	# shellcheck disable=SC2206 # LAB_DOCKERD_ARGS is documented as space-separated
	[[ -n $LAB_DOCKERD_ARGS ]] && args+=($LAB_DOCKERD_ARGS)
	printf '%s\n' "${args[@]}"
}

dockerd_start() {
	local i=$1 h
	h=$(host_dir "$i")
	pidfile_pid "$h/dockerd.pid" >/dev/null && die "h$i: dockerd is already running (pid $(<"$h/dockerd.pid"))"
	[[ -f $h/daemon.json ]] || echo '{}' >"$h/daemon.json"
	# dockerd refuses a pid file naming a process that still has a /proc
	# entry, zombies included (a just-killed dockerd PID 1 has not reaped yet).
	pidfile_pid "$h/docker.pid" >/dev/null || rm -f "$h/docker.pid"
	# Same for containerd: it dies with a killed dockerd (Pdeathsig), and a
	# stale pid file naming its zombie makes dockerd wait for its socket.
	pidfile_pid "$h/exec/containerd/containerd.pid" >/dev/null || rm -f "$h/exec/containerd/containerd.pid"
	[[ -f $h/dockerd.args ]] || dockerd_args "$i" >"$h/dockerd.args"
	local args
	mapfile -t args <"$h/dockerd.args"
	# TMPDIR: dockerd's temporary files, and the goroutine dumps containerd
	# writes there when dockerd kills it (SIGUSR1 first), stay in the lab.
	mkdir -p "$h/tmp"
	spawn "$h/dockerd.log" "$h/dockerd.pid" nsenter --mount="$(host_mnt "$i")" \
		--net="/run/netns/$(host_ns "$i")" -- env TMPDIR="$h/tmp" "$DOCKERD" "${args[@]}"
	wait_for "h$i: dockerd (log $h/dockerd.log)" "$LAB_TIMEOUT" dockerd_ready "$i"
	log "h$i: dockerd ready (pid $(<"$h/dockerd.pid"))"
}

dockerd_ready() {
	local h
	h=$(host_dir "$1")
	spawned_alive "$h/dockerd.pid" || { tail_log "$h/dockerd.log" && return 2; }
	timeout 10 "$DOCKER" -H "unix://$h/docker.sock" info --format '{{.ID}}' >/dev/null 2>&1
}

dockerd_stop() {
	local i=$1 sig=$2 h pid
	h=$(host_dir "$i")
	pid=$(pidfile_pid "$h/dockerd.pid") || { log "h$i: dockerd is not running"; return 0; }
	if [[ $sig == KILL ]]; then
		kill -KILL "$pid"
		wait_gone 10 "$pid" || warn "h$i: dockerd (pid $pid) survives SIGKILL"
		log "h$i: dockerd killed (pid $pid); containerd dies with it, shims and containers keep running"
		return 0
	fi
	# dockerd stops its containers (up to their stop timeouts) and containerd.
	stop_pid "h$i dockerd" "$pid" TERM 60
	local cpid
	cpid=$(pidfile_pid "$h/exec/containerd/containerd.pid") && stop_pid "h$i containerd" "$cpid" TERM 10
	log "h$i: dockerd stopped (pid $pid)"
}

# ---------------------------------------------------------------- up

host_up() {
	local i=$1
	mntns_up "$i"
	podnetd_start "$i"
	dockerd_start "$i"
	BUSYBOX_TAR=$LAB_DIR/busybox.tar "$REPO/scripts/busybox-image.sh" "unix://$(host_dir "$i")/docker.sock" |
		sed "s/^/lab: h$i: /"
	docker_h "$i" run --rm podnet-test/busybox true ||
		die "h$i: docker run --rm podnet-test/busybox true failed (log $(host_dir "$i")/dockerd.log)"
	log "h$i: up ($(host_ip "$i"))"
}

cmd_up() {
	need_root
	local n=${1:-} mode=cluster
	shift || true
	while (($#)); do
		case $1 in
		--etcd) mode=${2:-}; shift 2 || die "--etcd needs embedded or cluster" ;;
		--etcd=*) mode=${1#--etcd=}; shift ;;
		*) die "up: unknown argument '$1'" ;;
		esac
	done
	if ! [[ $n =~ ^[1-9]$ ]] || ((n > MAX_HOSTS)); then die "up: want N in 1..$MAX_HOSTS (got '$n')"; fi
	[[ $mode == cluster || $mode == embedded ]] || die "up: --etcd must be embedded or cluster (got '$mode')"
	local tool
	for tool in nsenter unshare ip iptables curl setsid "$DOCKER" "$DOCKERD"; do
		command -v "$tool" >/dev/null || die "$tool is missing: run scripts/deps.sh"
	done
	[[ $mode == embedded ]] || for tool in /usr/bin/etcd etcdctl openssl; do
		command -v "$tool" >/dev/null || die "$tool is missing: run scripts/deps.sh"
	done
	if [[ -e $STATE ]] || ip link show "$BR" >/dev/null 2>&1 || ip netns list | grep -q "^$LAB_NAME-"; then
		die "a lab named '$LAB_NAME' is already up (or left over) in $LAB_DIR: run scripts/lab.sh down first"
	fi
	if [[ -d $LAB_DIR && -n $(ls -A "$LAB_DIR") && ! -e $LAB_DIR/.podnet-lab ]]; then
		die "$LAB_DIR exists, is not empty and is not a lab directory: pick another LAB_DIR"
	fi
	((n == 1)) || [[ $mode == cluster ]] ||
		warn "--etcd embedded with $n hosts: each podnetd runs its own etcd; the hosts share no state"

	local t0=$SECONDS
	mkdir -p "$LAB_DIR/ns" "$LAB_DIR/bin"
	touch "$LAB_DIR/.podnet-lab"
	LAB_N=$n LAB_ETCD=$mode
	# Written first, so that `down` can clean up after a failed `up`.
	local v
	for v in LAB_NAME LAB_NET LAB_N LAB_ETCD PODNET_BIN DOCKER DOCKERD; do
		printf '%s=%q\n' "$v" "${!v}"
	done >"$STATE"
	trap 'up_failed' EXIT
	ln -sf "$(command -v "$DOCKER")" "$LAB_DIR/bin/docker"
	mkdir -p "$LAB_DIR/cni-bin"
	ln -sf "$PODNET_BIN/podnet-cni" "$LAB_DIR/cni-bin/podnet"
	ensure_dir /etc/docker
	# The mount-ns files need a mount with private propagation to live on.
	mount --bind "$LAB_DIR/ns" "$LAB_DIR/ns"
	mount --make-private "$LAB_DIR/ns"

	net_up
	# The test image's root fs, built once for every host, while etcd starts.
	"$REPO/scripts/busybox-image.sh" --tar "$LAB_DIR/busybox.tar" &
	local tar_pid=$!
	log "underlay $BR $LAB_NET.0/24: client $LAB_NET.2, hosts $(host_ip 1)..$(host_ip "$n")"
	if [[ $mode == cluster ]]; then
		local m
		make_certs "$n"
		for ((m = 1; m <= ETCD_MEMBERS; m++)); do etcd_start "$m"; done
		wait_for "etcd cluster $ETCD_ENDPOINTS" "$LAB_TIMEOUT" etcd_all_healthy
		log "etcd cluster healthy: $ETCD_ENDPOINTS"
	fi

	wait "$tar_pid" || die "could not build the test image's root fs"
	# Hosts come up in parallel.
	local i pids=() failed=0
	for ((i = 1; i <= n; i++)); do
		host_up "$i" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do wait "${pids[$i]}" || { failed=1 && echo "lab: error: h$((i + 1)) failed to come up" >&2; }; done
	((failed == 0)) || exit 1
	trap - EXIT
	log "lab '$LAB_NAME' up: $n host(s), etcd $mode, in $((SECONDS - t0))s (state in $LAB_DIR)"
}

up_failed() {
	echo "lab: error: up failed; logs are under $LAB_DIR; clean up with: scripts/lab.sh down" >&2
}

etcd_all_healthy() {
	local m
	for ((m = 1; m <= ETCD_MEMBERS; m++)); do
		spawned_alive "$(etcd_dir "$m")/etcd.pid" || { tail_log "$(etcd_dir "$m")/etcd.log" && return 2; }
	done
	etcd_healthy
}

# ---------------------------------------------------------------- down

# lab_netns: every netns named like this lab's.
lab_netns() {
	ip netns list 2>/dev/null | awk '{print $1}' |
		grep -E "^$LAB_NAME-(h[0-9]+|etcd[0-9]+|client)$" || true
}

# lab_cgroups: the containers' cgroup parents (--cgroup-parent /NAME-hI) in
# every hierarchy (v1 controllers and v2).
lab_cgroups() {
	find /sys/fs/cgroup -maxdepth 2 -mindepth 1 -type d -name "$LAB_NAME-h[0-9]*" 2>/dev/null || true
}

# host_down I: stop host I's containers, dockerd (and containerd), podnetd.
host_down() {
	local i=$1 h ids pid
	h=$(host_dir "$i")
	if pid=$(pidfile_pid "$h/dockerd.pid"); then
		# Remove containers first, quickly (dockerd would wait for their stop
		# timeouts), while podnetd still answers for their endpoints.
		ids=$(timeout 10 "$DOCKER" -H "unix://$h/docker.sock" ps -aq 2>/dev/null) || true
		if [[ -n $ids ]]; then
			# shellcheck disable=SC2086 # one ID per word
			timeout 30 "$DOCKER" -H "unix://$h/docker.sock" rm -f $ids >/dev/null 2>&1 ||
				warn "h$i: could not remove every container (continuing)"
		fi
		stop_pid "h$i dockerd" "$pid" TERM 20
	fi
	if pid=$(pidfile_pid "$h/exec/containerd/containerd.pid"); then stop_pid "h$i containerd" "$pid" TERM 10; fi
	if pid=$(pidfile_pid "$h/podnetd.pid"); then stop_pid "h$i podnetd" "$pid" TERM 10; fi
}

# sweep_processes: SIGKILL whatever is left: every process in a lab netns
# (shims, docker-proxy, host-network containers), every process in the
# containers' cgroups, and any process named in a pid file under LAB_DIR
# (shim.pid, init.pid) whose command line or cgroup belongs to the lab.
sweep_processes() {
	local pids=() ns cg f pid round
	for round in 1 2 3 4 5; do
		pids=()
		for ns in $(lab_netns); do
			while read -r pid; do [[ -n $pid ]] && pids+=("$pid"); done < <(ip netns pids "$ns" 2>/dev/null)
		done
		for cg in $(lab_cgroups); do
			while read -r pid; do [[ -n $pid ]] && pids+=("$pid"); done < <(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
		done
		if [[ -d $LAB_DIR ]]; then
			while read -r f; do
				read_pid "$f" || continue
				alive "$pid" || continue
				if ours "$pid" || in_lab_cgroup "$pid"; then pids+=("$pid"); fi
			done < <(find "$LAB_DIR" -xdev -name '*.pid' -type f 2>/dev/null)
		fi
		local live=() seen=()
		for pid in "${pids[@]}"; do
			[[ -z ${seen[pid]:-} && $pid != "$$" ]] && alive "$pid" && live+=("$pid")
			seen[pid]=1
		done
		((${#live[@]} == 0)) && return 0
		((round == 1)) && warn "killing ${#live[@]} leftover lab process(es): ${live[*]}"
		kill -KILL "${live[@]}" 2>/dev/null || true
		wait_gone 5 "${live[@]}" || true
	done
	warn "some lab processes survived SIGKILL"
}

# in_lab_cgroup PID: the process sits in a container cgroup of this lab.
in_lab_cgroup() {
	local line
	while read -r line; do
		[[ $line == *"/$LAB_NAME-h"[0-9]* ]] && return 0
	done 2>/dev/null <"/proc/$1/cgroup"
	return 1
}

remove_cgroups() {
	local cg d
	for cg in $(lab_cgroups); do
		# Depth first: children before parents.
		find "$cg" -depth -type d 2>/dev/null | while read -r d; do rmdir "$d" 2>/dev/null || true; done
		[[ -d $cg ]] && warn "cgroup $cg is still there"
	done
	return 0
}

# unmount_all: the mount-ns files and anything else mounted under LAB_DIR in
# the root mount namespace (deepest first).
unmount_all() {
	local mnt
	while read -r mnt; do
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || warn "cannot unmount $mnt"
	done < <(findmnt -rn -o TARGET | grep -E "^$LAB_DIR(/|$)" | sort -r)
}

# other_labs_up: a host netns of another lab (any LAB_NAME) exists.
other_labs_up() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^[a-z][a-z0-9]{0,7}-h[0-9]+$' | grep -qv "^$LAB_NAME-"
}

cmd_down() {
	need_root
	local t0=$SECONDS i m pid pids=() ns link d
	if [[ -f $STATE ]]; then
		for ((i = 1; i <= LAB_N; i++)); do
			host_down "$i" &
			pids+=($!)
		done
		((${#pids[@]} == 0)) || wait "${pids[@]}" || true
		for ((m = 1; m <= ETCD_MEMBERS; m++)); do
			pid=$(pidfile_pid "$(etcd_dir "$m")/etcd.pid") && stop_pid "etcd$m" "$pid" TERM 5
		done
	fi
	sweep_processes
	remove_cgroups
	unmount_all
	# Root-side veths first (synchronous), then the namespaces and the bridge.
	for ns in $(lab_netns); do
		ip link del "$ns" 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || warn "cannot delete netns $ns"
	done
	while read -r link; do
		ip link del "$link" 2>/dev/null || true
	done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^$LAB_NAME-(br|h[0-9]+|etcd[0-9]+|client)$")
	fw_del
	if [[ -f $LAB_DIR/created-dirs ]] && ! other_labs_up; then
		# Only the directories `up` had to create, and only when empty:
		# and never while another lab is up, whose hosts may have them as
		# mount points (removing one detaches their mounts).
		while read -r d; do rmdir "$d" 2>/dev/null || true; done < <(sort -r "$LAB_DIR/created-dirs")
	fi
	if [[ -d $LAB_DIR ]]; then
		if [[ -e $LAB_DIR/.podnet-lab ]]; then
			findmnt -rn -o TARGET | grep -qE "^$LAB_DIR(/|$)" && die "something is still mounted under $LAB_DIR"
			rm -rf --one-file-system "$LAB_DIR"
		elif [[ -n $(ls -A "$LAB_DIR") ]]; then
			warn "$LAB_DIR is not a lab directory: left alone"
		fi
	fi
	log "lab '$LAB_NAME' down in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- status

proc_state() {
	local pid
	if pid=$(pidfile_pid "$1" 2>/dev/null); then echo "running (pid $pid)"; elif [[ -f $1 ]]; then echo stopped; else echo "not started"; fi
}

cmd_status() {
	if [[ ! -f $STATE ]]; then
		log "no lab is up in $LAB_DIR"
		local left
		left=$(lab_netns)
		[[ -z $left ]] || warn "leftover namespaces (run scripts/lab.sh down): $(echo "$left" | tr '\n' ' ')"
		return 1
	fi
	local i m h n ids
	echo "lab '$LAB_NAME' in $LAB_DIR: $LAB_N host(s), etcd $LAB_ETCD, underlay $BR $LAB_NET.0/24"
	echo "client  $(client_ns)  $LAB_NET.2"
	for ((i = 1; i <= LAB_N; i++)); do
		h=$(host_dir "$i")
		if ids=$(timeout 10 "$DOCKER" -H "unix://$h/docker.sock" ps -q 2>/dev/null); then
			n=$(grep -c . <<<"$ids" || true)
		else
			n='?'
		fi
		printf 'h%d      %s  %s  podnetd: %s  dockerd: %s  containers: %s\n' "$i" "$(host_ns "$i")" \
			"$(host_ip "$i")" "$(proc_state "$h/podnetd.pid")" "$(proc_state "$h/dockerd.pid")" "$n"
	done
	if [[ $LAB_ETCD == cluster ]]; then
		for ((m = 1; m <= ETCD_MEMBERS; m++)); do
			printf 'etcd%d   %s  %s  %s\n' "$m" "$(etcd_ns "$m")" "$(etcd_ip "$m")" "$(proc_state "$(etcd_dir "$m")/etcd.pid")"
		done
		if etcd_healthy; then echo "etcd cluster: healthy ($ETCD_ENDPOINTS)"; else echo "etcd cluster: NOT healthy ($ETCD_ENDPOINTS)"; fi
	else
		echo "etcd: embedded in each podnetd (unix socket in each host's data dir, e.g. $(embedded_endpoint 1))"
	fi
}

# ---------------------------------------------------------------- exec

# common_env [I]: the environment of exec (host I, default 1) and client.
common_env() {
	local endpoints
	endpoints=$(embedded_endpoint "${1:-1}")
	if [[ $LAB_ETCD == cluster ]]; then
		endpoints=$ETCD_ENDPOINTS
		printf '%s\n' "ETCDCTL_CACERT=$PKI/ca.crt" "ETCDCTL_CERT=$PKI/admin.crt" "ETCDCTL_KEY=$PKI/admin.key"
		# A podnetd started by hand on a lab host (tests do) talks TLS too.
		printf '%s\n' "PODNET_ETCD_CACERT=$PKI/ca.crt" "PODNET_ETCD_CERT=$PKI/admin.crt" "PODNET_ETCD_KEY=$PKI/admin.key"
	fi
	printf '%s\n' "PATH=$PODNET_BIN:$LAB_DIR/bin:$PATH" "LAB_ETCD_ENDPOINTS=$endpoints" "LAB_DIR=$LAB_DIR" "LAB_NAME=$LAB_NAME"
}

cmd_exec() {
	need_root
	need_up
	(($# >= 2)) || die "usage: scripts/lab.sh exec H CMD..."
	local i envs h
	i=$(host_index "$1")
	shift
	h=$(host_dir "$i")
	mapfile -t envs < <(common_env "$i")
	exec nsenter --mount="$(host_mnt "$i")" --net="/run/netns/$(host_ns "$i")" --wd="$PWD" -- \
		env "${envs[@]}" DOCKER_HOST="unix://$h/docker.sock" PODNET_SOCKET="$h/podnet.sock" \
		LAB_HOST="h$i" LAB_HOST_IP="$(host_ip "$i")" "$@"
}

# ---------------------------------------------------------------- podman

# podman_setup I: host I's podman configuration (see the header); once per
# host, under a lock (parallel calls wait).
podman_setup() {
	local i=$1 h p
	h=$(host_dir "$i")
	p=$h/podman
	mkdir -p "$p"
	exec 9>"$p/.setup.lock"
	flock 9
	if [[ -f $p/ready ]]; then
		exec 9>&-
		return 0
	fi
	# No static_dir: conmon's cleanup process gets --root and then looks
	# for the container database under it, where podman must keep it too.
	mkdir -p "$p"/{net.d,root,runroot,tmp,volumes}
	cat >"$p/containers.conf" <<-EOF
		[containers]
		default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
		[network]
		network_backend = "cni"
		cni_plugin_dirs = ["$LAB_DIR/cni-bin", "/usr/lib/cni"]
		network_config_dir = "$p/net.d"
		[engine]
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		events_logfile_path = "$p/events.log"
		tmp_dir = "$p/tmp"
		volume_path = "$p/volumes"
		image_copy_tmp_dir = "$p/tmp"
	EOF
	cat >"$p/storage.conf" <<-EOF
		[storage]
		driver = "overlay"
		graphroot = "$p/root"
		runroot = "$p/runroot"
	EOF
	touch "$p/ready"
	exec 9>&-
}

cmd_podman() {
	need_root
	need_up
	(($# >= 1)) || die "usage: scripts/lab.sh podman H ARGS..."
	local i envs h p
	i=$(host_index "$1")
	shift
	h=$(host_dir "$i")
	p=$h/podman
	podman_setup "$i"
	if [[ ${1:-} == run || ${1:-} == create ]]; then
		set -- "$1" --cgroup-parent "/$(host_ns "$i")" "${@:2}"
	fi
	mapfile -t envs < <(common_env "$i")
	exec nsenter --mount="$(host_mnt "$i")" --net="/run/netns/$(host_ns "$i")" --wd="$PWD" -- \
		env "${envs[@]}" DOCKER_HOST="unix://$h/docker.sock" PODNET_SOCKET="$h/podnet.sock" \
		LAB_HOST="h$i" LAB_HOST_IP="$(host_ip "$i")" \
		CONTAINERS_CONF="$p/containers.conf" CONTAINERS_STORAGE_CONF="$p/storage.conf" \
		TMPDIR="$p/tmp" podman "$@"
}

cmd_client() {
	need_root
	need_up
	(($# >= 1)) || die "usage: scripts/lab.sh client CMD..."
	local envs
	mapfile -t envs < <(common_env)
	exec nsenter --net="/run/netns/$(client_ns)" -- env "${envs[@]}" "$@"
}

# stop_signal ARGS: TERM, or KILL with --kill.
stop_signal() {
	case ${1:-} in
	"") echo TERM ;;
	--kill) echo KILL ;;
	*) die "unknown option '$1' (want --kill)" ;;
	esac
}

# ---------------------------------------------------------------- main

main() {
	local cmd=${1:-}
	shift || true
	case $cmd in
	-h | --help | help) usage; return 0 ;;
	"") usage >&2; return 2 ;;
	esac
	load_config
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down ;;
	status) cmd_status ;;
	exec) cmd_exec "$@" ;;
	client) cmd_client "$@" ;;
	podman) cmd_podman "$@" ;;
	podnetd-stop | podnetd-start | dockerd-stop | dockerd-start)
		need_root
		need_up
		(($# >= 1)) || die "usage: scripts/lab.sh $cmd H"
		local i
		i=$(host_index "$1")
		case $cmd in
		podnetd-stop) podnetd_stop "$i" "$(stop_signal "${2:-}")" ;;
		podnetd-start) podnetd_start "$i" ;;
		dockerd-stop) dockerd_stop "$i" "$(stop_signal "${2:-}")" ;;
		dockerd-start) dockerd_start "$i" ;;
		esac
		;;
	etcd-stop | etcd-start)
		need_root
		need_up
		local m
		m=$(member_index "${1:-}")
		if [[ $cmd == etcd-stop ]]; then
			etcd_stop "$m" "$(stop_signal "${2:-}")"
		else
			etcd_start "$m"
			wait_for "etcd$m (log $(etcd_dir "$m")/etcd.log)" "$LAB_TIMEOUT" etcd_answers "$m"
			log "etcd$m answers"
		fi
		;;
	*) usage >&2; die "unknown command '$cmd'" ;;
	esac
}

main "$@"
