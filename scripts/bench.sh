#!/usr/bin/env bash
# bench.sh: podnet's benchmarks (the table in README.md, "Benchmarks") as
# ratios against Docker's own networking measured in the same run.
#
# usage: scripts/bench.sh          (as root; `make bench` builds first)
#
# It builds (make build) and the tools under bench/, brings up a one-host
# lab (scripts/lab.sh up 1 --etcd embedded: podnetd and its own dockerd in
# netns $LAB_NAME-h1), imports the busybox test image, runs the selected
# benchmarks and prints one table: ID, what, candidate, anchor, ratio
# (median of per-pair ratios), worst pair, target, floor, verdict. The lab,
# the namespaces and the processes it started are removed on exit, also on
# failure or Ctrl-C.
#
# Labs: B1, B1p, B2, B2c, B10, B11 and B20 run on that one-host lab (B12 needs none
# and runs while it is up). B9, B9d, B9l and REACH need two hosts sharing
# an etcd cluster: after the first lab is taken down, a second one comes up
# (scripts/lab.sh up 2: h1 and h2, 3 etcd members, same LAB_NAME) with two
# podnet vxlan networks created on both hosts (docker network create -d
# podnet --ipam-driver podnet -o mode=vxlan, one with -o
# podnet.direct-routing=true). Each lab comes up only when one of its
# benchmarks is selected. APPLY, B8, B14, B16 and B17 need the whole
# system on three hosts: a third lab (scripts/lab.sh up 3: h1..h3, 3 etcd
# members) with a podnet vxlan network on every host (and, but for APPLY,
# 1000 services x 10 endpoints loaded; scripts/bench/svclab.sh describes
# them); B18 and B19 run on that lab too, with BIRD in its client
# namespace (scripts/bench/lb.sh). SCALE needs no lab and runs
# last, with none up, as do the service benchmarks B3, B4, B5, B7, B6 and
# B13: they build their own namespaces (scripts/bench/services.sh
# describes them).
#
# The benchmarks live in one file per family under scripts/bench/, each
# sourced here and describing its benchmarks in its header:
#   local.sh       B1 B1p B2 B2c       container start, concurrent starts,
#                                      -p start, connection rate through -p
#   throughput.sh  B10 B11 B11i        iperf3 between containers; macvlan;
#                                      ipvlan in the QEMU guest
#   encryption.sh  B21 B21c B21v       WireGuard between two hosts in the
#                                      QEMU guest
#   ipam.sh        B12 B12c            IPAM allocations/s; leaked keys
#   overlay.sh     B9 B9d B9l          cross-host throughput and latency
#   reach.sh       REACH               docker run on h1 until it answers h2
#   scale.sh       SCALE               the overlay with 100..5000 hosts
#   scalec.sh      SCALEC              5000 hosts x 100 containers: fan-out,
#                                      memory, DNS (its own lab, e2e test)
#   services.sh    B3 B4 B5 B7 B6 B13  the service data plane
#   svclab.sh      APPLY B8 B14        services on the 3-host lab
#   policy.sh      B15 B16 B17         network policy: data path, programming
#                                      latency on 3 hosts, container start
#   podman.sh      B20                 podman run on the CNI plugin
#   lb.sh          B18 B19             LoadBalancer failover and data path
#                                      (3-host lab, BIRD as the router)
#   lib.sh         the helpers they share
#
# Arms are interleaved (the first arm alternates or rotates per pair) and
# built fresh per pair. Every loop is bounded by a pair count and a time
# budget. Before each benchmark the 1-minute load average and the CPU busy
# share over one second are recorded; above BENCH_MAX_LOAD, or an anchor CV
# above 10 %, the row's note says so (flagged, not refused: shared VM).
#
# Exit status: 0, or 1 when a floor is missed or a benchmark could not be
# measured (verdict ERROR); the table is printed first. 2: setup failed.
#
# Env:
#   BENCH_ONLY       comma-separated IDs to run (B1,B1p,B2,B2c,B10,B11,B11i,
#                    B12,B9,B9d,B9l,REACH,APPLY,B8,B14,B16,B17,B18,B19,SCALE,SCALEC,B3,B4,
#                    B5,B7,B6,B13,B15,B20,B21; B12c is part of B12; B4 runs
#                    in B3's pairs, B7 in
#                    B5's); default all
#   BENCH_PAIRS      N (every benchmark) or ID=N,... (defaults B1=30 B1p=5
#                    B2=10 B2c=5 B10=5 B11=10 B11i=3 B12=5 B9=5 B9d=5
#                    B9l=5 REACH=20 APPLY=5 B8=20 B14=3 B18=5 B19=5 SCALE=3 B3=5 B5=5 B6=3
#                    B20=20 B21=5 B15=5 B16=20 B17=5; quick: 3 1 2 1 1 2 1 1 1
#                    1 1 3 1 4 1 1 1 1 1 3 1 1 4 1 (B18, B19: see lb.sh); B11's
#                    throughput runs every other pair). REACH counts
#                    samples per mode, APPLY apply -f samples, B8 samples per kind of change (its
#                    convergence row half as many), SCALE go test -count; B9 and B9d
#                    share their pairs when both run (B9's count wins)
#   BENCH_QUICK=1    smoke run: few pairs, short arms (~4 minutes)
#   BENCH_SCALE_HOSTS  SCALE's cluster sizes (100,1000,5000)
#   BENCH_SCALEC_HOSTS, BENCH_SCALEC_CONTAINERS  SCALEC's stand-in hosts and
#                    containers per host (5000, 100)
#   BENCH_MAX_LOAD   load average above which a row is flagged (0.5)
#   BENCH_BUILD=0    skip `make build` (bench/ tools are always built)
#   BENCH_KEEP=DIR   copy the raw samples and logs to DIR at the end
#   BENCH_PN_SUBNET, BENCH_BR_SUBNET  subnets of the podnet and bridge
#                    networks inside the lab host (10.251.64.0/24, .65.0/24)
#   BENCH_VX_SUBNET, BENCH_DR_SUBNET  subnets of the two-host lab's vxlan
#                    and direct-routing networks (10.251.96.0/20, .112.0/20)
#   BENCH_SVC_SUBNET the three-host lab's vxlan network (10.251.128.0/18)
#   BENCH_LB_BGP_CIDR the BGP pool of B18/B19 (10.251.200.0/24; the L2 pool
#                    is the lab LAN's $LAB_NET.240/28)
#   LAB_NAME, LAB_DIR, LAB_NET  the lab (default bench, /tmp/pnbench,
#                    10.251.0: other labs on this machine use other names)
#   DOCKER           docker CLI (default /usr/bin/docker when present)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly LAB=$REPO/scripts/lab.sh
export LAB_NAME=${LAB_NAME:-bench}
export LAB_DIR=${LAB_DIR:-/tmp/pnbench}
export LAB_NET=${LAB_NET:-10.251.0}
export PATH=/usr/local/go/bin:$PATH
if [[ -z ${DOCKER:-} ]]; then
	if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=$(command -v docker || echo docker); fi
fi
export DOCKER
readonly IMG=podnet-test/busybox:latest
readonly HOST_IP=$LAB_NET.11
readonly CLIENT_NS=$LAB_NAME-client
readonly PN_NET=benchpn BR_NET=benchbr
readonly PN_SUBNET=${BENCH_PN_SUBNET:-10.251.64.0/24}
readonly BR_SUBNET=${BENCH_BR_SUBNET:-10.251.65.0/24}
readonly RAW_A=$LAB_NAME-rva RAW_B=$LAB_NAME-rvb
# The hand-built VXLAN path of B9/B9l: two "hosts" and their containers.
readonly HV_CA=$LAB_NAME-hca HV_CB=$LAB_NAME-hcb
readonly HV_SERVER=10.251.253.2
readonly VX_NET=benchvx DR_NET=benchvd
readonly VX_SUBNET=${BENCH_VX_SUBNET:-10.251.96.0/20}
readonly DR_SUBNET=${BENCH_DR_SUBNET:-10.251.112.0/20}
readonly MAX_LOAD=${BENCH_MAX_LOAD:-0.5}
readonly QUICK=${BENCH_QUICK:-0}
readonly ALL_IDS=(B1 B1p B2 B2c B10 B11 B20 B11i B21 B12 B9 B9d B9l REACH APPLY B8 B14 B16 B17 B18 B19 SCALE SCALEC B3 B4 B5 B7 B6 B13 B15)
# Benchmarks that build their own namespaces (or QEMU guest) and need no lab.
readonly NOLAB_IDS=(SCALE SCALEC B11i B21 B3 B4 B5 B7 B6 B13 B15)
# Benchmarks by lab: one host (embedded etcd), two and three hosts (etcd
# cluster).
readonly LAB1_IDS=(B1 B1p B2 B2c B10 B11 B20) LAB2_IDS=(B9 B9d B9l REACH) LAB3_IDS=(APPLY B8 B14 B16 B17 B18 B19)
# B11: the "LAN" netns, the parent veth in h1, the two macvlan networks.
readonly B11_LAN=$LAB_NAME-b11lan B11_PARENT=b11par B11_PN=b11pn B11_DK=b11dk

# One file per benchmark family (their headers describe them), and the
# helpers they share.
# shellcheck source=scripts/bench/lib.sh
. "$REPO/scripts/bench/lib.sh"
# shellcheck source=scripts/bench/local.sh
. "$REPO/scripts/bench/local.sh"
# shellcheck source=scripts/bench/throughput.sh
. "$REPO/scripts/bench/throughput.sh"
# shellcheck source=scripts/bench/encryption.sh
. "$REPO/scripts/bench/encryption.sh"
# shellcheck source=scripts/bench/ipam.sh
. "$REPO/scripts/bench/ipam.sh"
# shellcheck source=scripts/bench/overlay.sh
. "$REPO/scripts/bench/overlay.sh"
# shellcheck source=scripts/bench/reach.sh
. "$REPO/scripts/bench/reach.sh"
# shellcheck source=scripts/bench/scale.sh
. "$REPO/scripts/bench/scale.sh"
# shellcheck source=scripts/bench/scalec.sh
. "$REPO/scripts/bench/scalec.sh"
# shellcheck source=scripts/bench/services.sh
. "$REPO/scripts/bench/services.sh"
# shellcheck source=scripts/bench/svclab.sh
. "$REPO/scripts/bench/svclab.sh"
# shellcheck source=scripts/bench/podman.sh
. "$REPO/scripts/bench/podman.sh"
# shellcheck source=scripts/bench/policy.sh
. "$REPO/scripts/bench/policy.sh"
# shellcheck source=scripts/bench/lb.sh
. "$REPO/scripts/bench/lb.sh"

T0=$SECONDS
WORK=
OWN_LAB=0
LAB_HOSTS=0
BENCH_PID=
SHM=

# ---------------------------------------------------------------- main

# run_bench ID: run bench_ID in a subshell (errexit on), record an ERROR row
# if it fails before writing its rows, then clean up after it.
run_bench() {
	local id=$1 rc=0 before after
	before=$(grep -c . "$WORK/rows.tsv" || true)
	say "=== $id"
	# In the background, so that a signal interrupts `wait` at once (bash
	# runs traps only after a foreground child finishes); cleanup kills it.
	(
		set -e
		"bench_$id"
	) &
	BENCH_PID=$!
	wait "$BENCH_PID" || rc=$?
	BENCH_PID=
	after=$(grep -c . "$WORK/rows.tsv" || true)
	if ((rc != 0)); then
		warn "$id failed (exit $rc)"
		((after > before)) || error_row "$id" "(failed)" le 1 - "benchmark failed (exit $rc): see its output above"
	fi
	kill_registered
	del_own_netns
	((OWN_LAB == 0)) || rm_containers || warn "could not remove the containers after $id"
}

selected() {
	local id=$1 want
	[[ -z ${BENCH_ONLY:-} ]] && return 0
	for want in ${BENCH_ONLY//,/ }; do
		[[ $want == B12c ]] && want=B12
		[[ $want == "$id" ]] && return 0
	done
	return 1
}

check_only() {
	local want id ok only=${BENCH_ONLY:-}
	for want in ${only//,/ }; do
		ok=0
		for id in "${ALL_IDS[@]}" B12c; do [[ $want == "$id" ]] && ok=1; done
		((ok)) || die "BENCH_ONLY: unknown benchmark '$want' (want some of: ${ALL_IDS[*]})"
	done
}

check_pairs() {
	local p=${BENCH_PAIRS:-} item id ok
	[[ -z $p || $p =~ ^[1-9][0-9]*$ ]] && return 0
	for item in ${p//,/ }; do
		[[ $item =~ ^([A-Za-z0-9]+)=[1-9][0-9]*$ ]] || die "BENCH_PAIRS: '$item': want ID=N (N >= 1), or one number for all"
		ok=0
		for id in "${ALL_IDS[@]}"; do [[ ${BASH_REMATCH[1]} == "$id" ]] && ok=1; done
		((ok)) || die "BENCH_PAIRS: unknown benchmark '${BASH_REMATCH[1]}' (want some of: ${ALL_IDS[*]})"
	done
}

# in_list ID LIST...: ID is one of LIST.
in_list() {
	local id=$1 x
	shift
	for x in "$@"; do [[ $x == "$id" ]] && return 0; done
	return 1
}

# lab_up N: bring up an N-host lab (1: embedded etcd, with the podnet and
# bridge networks of B1..B10; 2: etcd cluster, with the vxlan and
# direct-routing networks on both hosts; 3: etcd cluster, with the
# services network on every host).
lab_up() {
	local n=$1 i args=(up "$1")
	((n == 1)) && args+=(--etcd embedded)
	say "lab up ($n host(s)$( ((n == 1)) && echo ', embedded etcd' || echo ', 3-member etcd cluster')): LAB_NAME=$LAB_NAME LAB_DIR=$LAB_DIR LAB_NET=$LAB_NET"
	OWN_LAB=1 LAB_HOSTS=$n
	"$LAB" "${args[@]}" 2>&1 | sed 's/^/  /'
	((PIPESTATUS[0] == 0)) || die "lab up failed"
	if ((n == 1)); then
		BUSYBOX_TAR='' "$LAB" exec h1 "$REPO/scripts/busybox-image.sh" | sed 's/^/  /'
		((PIPESTATUS[0] == 0)) || die "importing the busybox image failed"
		dk network create -d podnet --ipam-driver podnet --subnet "$PN_SUBNET" "$PN_NET" >/dev/null ||
			die "docker network create -d podnet failed (log: $LAB_DIR/h1/podnetd.log)"
		dk network create -d bridge --subnet "$BR_SUBNET" "$BR_NET" >/dev/null || die "docker network create -d bridge failed"
		say "networks: $PN_NET (podnet, $PN_SUBNET), $BR_NET (Docker bridge, $BR_SUBNET)"
		return 0
	fi
	((n == 3)) && { svclab_up; return 0; }
	# The same definition on every host (docker network create does not
	# fan out by itself).
	for ((i = 1; i <= n; i++)); do
		dkh "$i" network create -d podnet --ipam-driver podnet -o mode=vxlan --subnet "$VX_SUBNET" "$VX_NET" >/dev/null ||
			die "h$i: docker network create -o mode=vxlan failed (log: $LAB_DIR/h$i/podnetd.log)"
		dkh "$i" network create -d podnet --ipam-driver podnet -o mode=vxlan -o podnet.direct-routing=true \
			--subnet "$DR_SUBNET" "$DR_NET" >/dev/null ||
			die "h$i: docker network create -o podnet.direct-routing=true failed (log: $LAB_DIR/h$i/podnetd.log)"
	done
	say "networks on h1 and h2: $VX_NET (vxlan, $VX_SUBNET), $DR_NET (vxlan + direct routing, $DR_SUBNET)"
	# For the record: the devices podnet made (MTU, VXLAN options).
	"$LAB" exec h1 ip -d link show >"$WORK/lab2-h1-links.txt" 2>&1 || true
}

# lab_down: print the plugin request durations, keep podnetd's logs, take
# the lab down (if this run brought it up).
lab_down() {
	local i
	((OWN_LAB)) || return 0
	for ((i = 1; i <= LAB_HOSTS; i++)); do
		[[ -n $WORK && -f $LAB_DIR/h$i/podnetd.log ]] || continue
		cp "$LAB_DIR/h$i/podnetd.log" "$WORK/podnetd-lab$LAB_HOSTS-h$i.log"
		say "podnet plugin request durations on h$i of the $LAB_HOSTS-host lab ($LAB_DIR/h$i/podnetd.log), slowest first:"
		plugin_durations <"$LAB_DIR/h$i/podnetd.log" | sed 's/^/  /' || true
	done
	say "tearing the lab down"
	"$LAB" down 2>&1 | sed 's/^/  /'
	OWN_LAB=0 LAB_HOSTS=0
}

# ensure_lab N: the lab this benchmark needs: N hosts, or none (0).
ensure_lab() {
	((LAB_HOSTS == $1)) && return 0
	lab_down
	(($1 == 0)) || lab_up "$1"
}

main() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (lab namespaces, dockerd)"
	check_only
	check_pairs
	local tool id need_lab=0
	for tool in go make ip bridge nsenter taskset ss iperf3 awk timeout curl "$DOCKER"; do
		command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh; iperf3: apt-get install iperf3)"
	done
	for id in "${LAB1_IDS[@]}" "${LAB2_IDS[@]}" "${LAB3_IDS[@]}"; do selected "$id" && need_lab=1; done
	if ((need_lab)); then
		if [[ -e $LAB_DIR/lab.env ]] || ip link show "$LAB_NAME-br" >/dev/null 2>&1; then
			die "a lab '$LAB_NAME' is already up or left over in $LAB_DIR; remove it with: LAB_NAME=$LAB_NAME LAB_DIR=$LAB_DIR LAB_NET=$LAB_NET $LAB down"
		fi
	fi

	WORK=$(mktemp -d /tmp/pnbench-work.XXXXXX)
	SHM=/dev/shm/${WORK##*/}
	mkdir -p "$WORK/bin"
	: >"$WORK/rows.tsv"
	: >"$WORK/pids"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	if [[ ${BENCH_BUILD:-1} != 0 ]]; then
		say "make build"
		make -C "$REPO" --no-print-directory build >/dev/null || die "make build failed"
	fi
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/bin/" ./bench/connrate ./bench/report ./bench/rr ./bench/reach ./bench/svcbench ./bench/lbprobe ./bench/polbench) ||
		die "building bench/ failed"

	for id in "${ALL_IDS[@]}"; do
		selected "$id" || continue
		# B9 measures B9d in the same pairs when both are selected.
		[[ $id == B9d ]] && selected B9 && continue
		if in_list "$id" "${LAB1_IDS[@]}"; then
			ensure_lab 1
		elif in_list "$id" "${LAB2_IDS[@]}"; then
			ensure_lab 2
		elif in_list "$id" "${LAB3_IDS[@]}"; then
			ensure_lab 3
		elif in_list "$id" "${NOLAB_IDS[@]}"; then
			ensure_lab 0
		fi
		run_bench "$id"
	done
	lab_down

	echo
	echo "podnet benchmarks ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r)$( ((QUICK)) && echo ', QUICK smoke run: few pairs, not a verdict'))"
	echo
	local rc=0
	"$WORK/bin/report" table "$WORK/rows.tsv" || rc=$?
	echo
	case $rc in
	0) say "all floors met (total $((SECONDS - T0)) s)" ;;
	1) say "a floor was missed or a benchmark could not be measured (total $((SECONDS - T0)) s)" ;;
	*) say "could not print the table (report exit $rc)" ;;
	esac
	((rc == 0)) || return 1
}

# plugin_durations: per plugin method, count, median and max request time
# from podnetd's log lines (dur=1.5ms, dur=42µs, dur=1.2s).
plugin_durations() {
	printf '%-42s %6s %9s %9s %9s %9s\n' method count "median ms" "p90 ms" "max ms" "total ms"
	awk '/msg="plugin request/ {
		m = ""; d = -1
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^method=/) m = substr($i, 8)
			if ($i ~ /^dur=/) {
				v = substr($i, 5)
				if (v ~ /[0-9]m[0-9.]+s$/) { split(v, p, "m"); d = (p[1] * 60 + p[2]) * 1000 }
				else if (v ~ /µs$/) d = v / 1000
				else if (v ~ /ms$/) d = v + 0
				else if (v ~ /ns$/) d = v / 1e6
				else if (v ~ /s$/) d = v * 1000
			}
		}
		if (m != "" && d >= 0) print m, d
	}' | sort -k1,1 -k2,2g | awk '
	function flush() {
		if (k == 0) return
		med = (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
		i = int(0.9 * k); if (i < 0.9 * k) i++; if (i < 1) i = 1; p90 = a[i]
		printf "%-42s %6d %9.2f %9.2f %9.2f %9.1f\n", cur, k, med, p90, a[k], tot
	}
	$1 != cur { flush(); cur = $1; k = 0; tot = 0 }
	{ a[++k] = $2; tot += $2 }
	END { flush() }' | sort -k5,5gr
}

main "$@"
