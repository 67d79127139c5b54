#!/usr/bin/env bash
# bench.sh: podnet's benchmarks (../shared/docs/performance.md §6.2) as
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
# Labs: B1, B1p, B2, B2c and B10 run on that one-host lab (B12 needs none
# and runs while it is up). B9, B9d, B9l and REACH need two hosts sharing
# an etcd cluster: after the first lab is taken down, a second one comes up
# (scripts/lab.sh up 2: h1 and h2, 3 etcd members, same LAB_NAME) with two
# podnet vxlan networks created on both hosts (docker network create -d
# podnet --ipam-driver podnet -o mode=vxlan, one with -o
# podnet.direct-routing=true). Each lab comes up only when one of its
# benchmarks is selected. SCALE needs no lab and runs last, with none up.
#
#   B1   docker run --rm IMG true: podnet network vs a user-defined Docker
#        bridge network (-d bridge) vs --net=none, interleaved triples
#        (order rotates). R = T(podnet)/T(bridge); R_net =
#        (T(podnet)-T(none))/(T(bridge)-T(none)) per triple.
#   B1p  10 x docker run -d ... sleep started concurrently, wall time until
#        all returned (then docker rm -f, untimed): podnet vs bridge.
#   B2   docker run -d -p 8080:80 IMG httpd -f -p 80, time until docker run
#        returns (rm -f between runs): podnet vs bridge with the same -p
#        (Docker's default userland proxy on, as users get it).
#   B2c  connection rate through a published port: bench/connrate from the
#        lab's client netns to the host's underlay IP:port, connect + RST
#        close, 3 s per arm, client on CPU 0; server: connrate -serve inside
#        the container's netns (nsenter), CPU 1. podnet (-p 8080:80) vs
#        Docker's -p path (bridge container, -p 8081:80, iptables DNAT);
#        context: direct to the podnet container's IP from the host netns,
#        and routed (no NAT) from the client netns.
#   B10  iperf3 single stream -t 10 -O 2 between two containers of the same
#        network, run in their netns via nsenter, client CPU 0, server CPU 1:
#        podnet vs bridge; context: raw veth between two fresh netns.
#   B12  TMPDIR=/dev/shm go test -run '^$' -bench B12 ./ipam/ (BenchmarkB12
#        and BenchmarkB12cChurn): affine IPAM vs the naive shared-key
#        allocator at 3 and 16 writers; B12c: leaked keys after churn.
##   B9   cross-host TCP throughput, container -> container over a podnet
#        vxlan network: iperf3 -t 10 -O 2 -J, 1 stream, client in a container
#        on h1 (its netns via nsenter, CPU 0), server in a container on h2
#        (CPU 1). Anchors in the same pairs: (a) raw veth between two fresh
#        netns; (b) a hand-built flannel-style VXLAN path: two fresh "host"
#        netns on a veth underlay (MTU 1500), each with a bridge and a
#        container netns on a veth (MTU 1450, default route via the bridge),
#        a VXLAN device (id 42, dstport 4789, nolearning, MTU 1450,
#        txqueuelen 0 as flannel's netlink call leaves it) and, towards the
#        other host, a static `bridge fdb append MAC dev vx0 dst U`, a
#        permanent neighbor and an onlink route (flannel's vxlan backend).
#        Rows: podnet/(b), podnet/(a); retransmits and (b)/(a) in the notes.
#        Every arm is built fresh (new containers, new netns) per pair.
#   B9d  the same with the direct-routing network (host-gw: no
#        encapsulation between hosts of one subnet) vs (a): context row, no
#        target. Runs inside B9's pairs when both are selected.
#   B9l  TCP_RR latency on the same paths: bench/rr, one connection,
#        TCP_NODELAY, 1-byte ping-pong for 5 s after a 0.5 s warm-up, client
#        CPU 0, server CPU 1: podnet vxlan vs (b), median of per-pair p50
#        ratios (p99 ratio as a context row); raw veth as context.
#   REACH  docker run -d --ip ADDR on h1 until the first ICMP echo reply
#        from ADDR seen from a container on h2 (bench/reach in its netns, one
#        request every 10 ms), timed from just before the docker run. The
#        prober starts before the docker run ("early"); ADDR is a fresh
#        address of the /26 block h1 already claimed (a container kept
#        running there), so the prober knows it and IPAM takes the usual
#        path (no exception route). Median and p99 (nearest rank) over the
#        samples, absolute (no anchor). Context row ("late", interleaved):
#        the prober starts only once docker run has returned.
#   SCALE  go test -run TestScale100Hosts -bench Program100x4 -benchmem
#        ./overlay/: one host programming 100 remote hosts x 4 blocks (501
#        routes, 100 neighbors, 100 FDB entries) in a throwaway netns, from
#        scratch; a full resync with nothing to change; a pass after an etcd
#        event that changes nothing; the view's memory. Absolute (no
#        anchor), medians over -count runs.
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
#   BENCH_ONLY       comma-separated IDs to run (B1,B1p,B2,B2c,B10,B12,B9,
#                    B9d,B9l,REACH,SCALE; B12c is part of B12); default all
#   BENCH_PAIRS      N (every benchmark) or ID=N,... (defaults B1=30 B1p=5
#                    B2=10 B2c=5 B10=5 B12=5 B9=5 B9d=5 B9l=5 REACH=20
#                    SCALE=3; quick: 3 1 2 1 1 1 1 1 1 3 1). REACH counts
#                    samples per mode, SCALE go test -count; B9 and B9d
#                    share their pairs when both run (B9's count wins)
#   BENCH_QUICK=1    smoke run: few pairs, short arms (~4 minutes)
#   BENCH_MAX_LOAD   load average above which a row is flagged (0.5)
#   BENCH_BUILD=0    skip `make build` (bench/ tools are always built)
#   BENCH_KEEP=DIR   copy the raw samples and logs to DIR at the end
#   BENCH_PN_SUBNET, BENCH_BR_SUBNET  subnets of the podnet and bridge
#                    networks inside the lab host (10.251.64.0/24, .65.0/24)
#   BENCH_VX_SUBNET, BENCH_DR_SUBNET  subnets of the two-host lab's vxlan
#                    and direct-routing networks (10.251.96.0/20, .112.0/20)
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
readonly MAX_LOAD=${BENCH_MAX_LOAD:-0.5}
readonly QUICK=${BENCH_QUICK:-0}
readonly ALL_IDS=(B1 B1p B2 B2c B10 B12)

T0=$SECONDS
WORK=
OWN_LAB=0
BENCH_PID=
SHM=

say() { printf 'bench: [%4ds] %s\n' "$((SECONDS - T0))" "$*"; }
warn() { echo "bench: warning: $*" >&2; }
die() {
	echo "bench: error: $*" >&2
	exit 2
}

# ---------------------------------------------------------------- cleanup

# kill_pid PID: TERM, then KILL after 5 s, if PID is still one we started
# (its command line names iperf3 or connrate: guards against PID reuse).
kill_pid() {
	local pid=$1 i cmd
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 0
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
	[[ $cmd == *iperf3* || $cmd == *connrate* ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

kill_registered() {
	local pid
	[[ -n $WORK && -f $WORK/pids ]] || return 0
	while read -r pid; do kill_pid "$pid"; done <"$WORK/pids"
	: >"$WORK/pids"
}

del_raw_netns() {
	local ns
	for ns in "$RAW_A" "$RAW_B"; do
		[[ -e /run/netns/$ns ]] && { ip netns del "$ns" 2>/dev/null || warn "cannot delete netns $ns"; }
	done
	return 0
}

# kill_tree PID: stop PID, kill its descendants, then PID itself (SIGKILL).
kill_tree() {
	local pid=$1 c
	kill -STOP "$pid" 2>/dev/null || return 0
	for c in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill_tree "$c"; done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [[ -n $BENCH_PID ]]; then
		warn "interrupted: stopping the running benchmark (pid $BENCH_PID)"
		kill_tree "$BENCH_PID"
		wait "$BENCH_PID" 2>/dev/null
	fi
	kill_registered
	del_raw_netns
	if ((OWN_LAB)); then
		[[ -n $WORK && -f $LAB_DIR/h1/podnetd.log ]] && cp "$LAB_DIR/h1/podnetd.log" "$WORK/podnetd.log"
		say "tearing the lab down"
		"$LAB" down 2>&1 | sed 's/^/  /'
	fi
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ -n ${BENCH_KEEP:-} ]]; then
			mkdir -p "$BENCH_KEEP" && cp -r "$WORK"/. "$BENCH_KEEP"/ && say "raw samples and logs kept in $BENCH_KEEP"
		fi
		rm -rf "$WORK"
	fi
	[[ -n $SHM && -d $SHM ]] && rm -rf "$SHM"
	exit "$rc"
}

# ---------------------------------------------------------------- helpers

dk() { timeout "${DK_TIMEOUT:-120}" "$DOCKER" -H "unix://$LAB_DIR/h1/docker.sock" "$@"; }

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }

# ms US: microseconds as milliseconds with one decimal.
ms() { printf '%d.%d' "$(($1 / 1000))" "$((($1 % 1000) / 100))"; }

# calc EXPR: floating-point arithmetic (awk); prints "nan" on a zero divisor.
calc() { awk "BEGIN { d = 1; ${2:+d = $2;} if (d == 0) print \"nan\"; else printf \"%.4f\\n\", $1 }"; }

# fmt DIGITS X: X rounded to DIGITS decimals.
fmt() { printf "%.${1}f" "$2"; }

# summary FILE: "n median min max mean cv" of the numbers in FILE.
summary() { "$WORK/bin/report" stats <"$1"; }

# field FILE N: field N (1 n, 2 median, 3 min, 4 max, 5 mean, 6 cv) of summary.
field() { summary "$1" | awk -v n="$2" '{ print $n }'; }

# kv KEY LINE: the value of KEY=VALUE in LINE.
kv() {
	local w
	for w in $2; do
		[[ $w == "$1="* ]] && { echo "${w#*=}"; return 0; }
	done
	return 1
}

# pairs ID FULL QUICK: the pair count for ID.
pairs() {
	local id=$1 n=$2 item
	((QUICK)) && n=$3
	if [[ ${BENCH_PAIRS:-} =~ ^[0-9]+$ ]]; then
		n=$BENCH_PAIRS
	elif [[ -n ${BENCH_PAIRS:-} ]]; then
		for item in ${BENCH_PAIRS//,/ }; do
			[[ ${item%%=*} == "$id" ]] && n=${item#*=}
		done
	fi
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_PAIRS: bad pair count '$n' for $id"
	echo "$n"
}

# row ID WHAT CANDIDATE ANCHOR RATIO WORST DIR TARGET FLOOR NOTE
row() {
	local IFS=$'\t' f=("$@")
	f=("${f[@]//$'\t'/ }")
	echo "${f[*]}" >>"$WORK/rows.tsv"
}

# error_row ID WHAT DIR TARGET FLOOR NOTE
error_row() { row "$1" "$2" - - "" - "$3" "$4" "$5" "$6"; }

# cpu_busy: percent of CPU time not idle over the next second, machine-wide.
cpu_busy() {
	local a b
	read -r -a a </proc/stat
	sleep 1
	read -r -a b </proc/stat
	awk -v u1="${a[1]}" -v n1="${a[2]}" -v s1="${a[3]}" -v i1="${a[4]}" -v w1="${a[5]}" -v q1="${a[6]}" -v sq1="${a[7]}" -v st1="${a[8]}" \
		-v u2="${b[1]}" -v n2="${b[2]}" -v s2="${b[3]}" -v i2="${b[4]}" -v w2="${b[5]}" -v q2="${b[6]}" -v sq2="${b[7]}" -v st2="${b[8]}" \
		'BEGIN { t = (u2+n2+s2+i2+w2+q2+sq2+st2) - (u1+n1+s1+i1+w1+q1+sq1+st1); id = (i2+w2) - (i1+w1);
		         if (t <= 0) print 0; else printf "%.0f", 100 * (t - id) / t }'
}

# precheck ID: record the load before a benchmark; sets PRE_NOTE.
PRE_NOTE=
precheck() {
	local load busy
	read -r load _ </proc/loadavg
	busy=$(cpu_busy)
	PRE_NOTE="load1 $load, CPU ${busy}% busy before start"
	if awk -v l="$load" -v m="$MAX_LOAD" 'BEGIN { exit !(l > m) }'; then
		PRE_NOTE="FLAG: $PRE_NOTE (load > $MAX_LOAD: noisy)"
	fi
	say "$1: $PRE_NOTE"
}

# cv_note FILE WHAT: a flag when the anchor's coefficient of variation > 10 %.
cv_note() {
	local cv
	cv=$(field "$1" 6)
	if awk -v c="$cv" 'BEGIN { exit !(c > 0.10) }'; then
		printf 'FLAG: %s CV %.1f%% > 10%%' "$2" "$(calc "$cv * 100")"
	else
		printf '%s CV %.1f%%' "$2" "$(calc "$cv * 100")"
	fi
}

# deadline_note DONE WANTED: a note when the time budget cut a benchmark short.
deadline_note() { (($1 >= $2)) || printf 'FLAG: only %d of %d pairs (time budget); ' "$1" "$2"; }

# bg LOG CMD...: start CMD in the background, register its PID for cleanup;
# sets BG_PID. CMD must exec its payload (nsenter, taskset and timeout do).
BG_PID=
bg() {
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	BG_PID=$!
	echo "$BG_PID" >>"$WORK/pids"
}

# wait_exit PID SECS: wait for PID (a child) to exit; kill it after SECS.
wait_exit() {
	local pid=$1 end=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.1; done
	kill_pid "$pid"
	wait "$pid" 2>/dev/null || true
}

# wait_listen NETNS_FILE PORT SECS: until a TCP socket listens on PORT there.
wait_listen() {
	local end=$((SECONDS + $3))
	while ((SECONDS < end)); do
		[[ -n $(nsenter --net="$1" ss -Hltn "sport = :$2" 2>/dev/null) ]] && return 0
		sleep 0.05
	done
	echo "bench: nothing listens on port $2 in $1 after $3 s" >&2
	return 1
}

ctr_pid() {
	local pid
	pid=$(dk inspect -f '{{.State.Pid}}' "$1") || return 1
	[[ $pid =~ ^[1-9][0-9]*$ ]] || { echo "bench: container $1 has no PID ($pid)" >&2; return 1; }
	echo "$pid"
}

ctr_ip() {
	local ip
	ip=$(dk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1") || return 1
	[[ $ip =~ ^[0-9.]+$ ]] || { echo "bench: container $1 has no IPv4 address ('$ip')" >&2; return 1; }
	echo "$ip"
}

rm_containers() {
	local ids
	ids=$(dk ps -aq) || return 1
	# shellcheck disable=SC2086 # one ID per word
	[[ -z $ids ]] || dk rm -f $ids >/dev/null
}

net_of() {
	case $1 in
	podnet) echo "$PN_NET" ;;
	bridge) echo "$BR_NET" ;;
	none) echo none ;;
	*) return 1 ;;
	esac
}

# rotate I ARMS...: ARMS rotated left by I (interleaving order for pair I).
rotate() {
	local i=$1
	shift
	local a=("$@") n=$#
	local k
	for ((k = 0; k < n; k++)); do echo "${a[(k + i) % n]}"; done
}

# time_us CMD...: run CMD (output discarded), print its wall time in µs.
time_us() {
	local t0 t1
	t0=$(now_us)
	"$@" >/dev/null || { echo "bench: failed: $*" >&2; return 1; }
	t1=$(now_us)
	echo $((t1 - t0))
}

# ratio_stats FILE DIR: "median worst" of per-pair ratios (worst: max for
# le, min for ge).
ratio_stats() {
	local n med min max
	read -r n med min max _ <<<"$(summary "$1")"
	((n > 0)) || { echo "nan -"; return 0; }
	if [[ $2 == le ]]; then echo "$med $(printf '%.3f' "$max")"; else echo "$med $(printf '%.3f' "$min")"; fi
}

# ---------------------------------------------------------------- B1

bench_B1() {
	local n budget deadline i arm us line r rn skipped=0 done_=0 d="$WORK/B1"
	declare -A t=()
	n=$(pairs B1 30 3)
	budget=$((60 + 12 * n))
	mkdir -p "$d"
	precheck B1
	for arm in podnet bridge none; do
		time_us dk run --rm --net="$(net_of "$arm")" "$IMG" true >/dev/null || return 1
	done
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" podnet bridge none); do
			us=$(time_us dk run --rm --net="$(net_of "$arm")" "$IMG" true) || return 1
			t[$arm]=$us
			printf '%s\n' "$(ms "$us")" >>"$d/$arm"
			line+=" $arm $(ms "$us") ms"
		done
		r=$(calc "${t[podnet]} / ${t[bridge]}" "${t[bridge]}")
		echo "$r" >>"$d/R"
		# R_net is undefined when the bridge is not slower than none by > 5 ms.
		if ((t[bridge] - t[none] > 5000)); then
			rn=$(calc "(${t[podnet]} - ${t[none]}) / (${t[bridge]} - ${t[none]})")
			echo "$rn" >>"$d/Rnet"
		else
			rn="n/a (bridge-none <= 5 ms)"
			skipped=$((skipped + 1))
		fi
		done_=$((i + 1))
		say "B1 triple $done_/$n:$line -> R $r, R_net $rn"
	done
	local med_p med_b med_n note rs rns
	med_p=$(fmt 1 "$(field "$d/podnet" 2)") med_b=$(fmt 1 "$(field "$d/bridge" 2)") med_n=$(fmt 1 "$(field "$d/none" 2)")
	rs=$(ratio_stats "$d/R" le)
	touch "$d/Rnet"
	rns=$(ratio_stats "$d/Rnet" le)
	note="$(deadline_note "$done_" "$n")$done_ triples; anchor = user-defined -d bridge network $BR_NET; $(cv_note "$d/bridge" "bridge"); $PRE_NOTE"
	row B1 "docker run --rm true (start+stop)" "podnet ${med_p} ms" "bridge ${med_b} ms" "${rs% *}" "${rs#* }" \
		le 1.05 1.20 "$note"
	note="median of per-triple R_net; none ${med_n} ms; network cost: podnet $(fmt 1 "$(calc "$med_p - $med_n")") ms, bridge $(fmt 1 "$(calc "$med_b - $med_n")") ms (medians)"
	((skipped == 0)) || note+="; FLAG: $skipped triples skipped (bridge-none <= 5 ms)"
	row "B1 R_net" "network share of B1 vs bridge" "podnet-none" "bridge-none" "${rns% *}" "${rns#* }" \
		le 1.5 3 "$note"
}

# ---------------------------------------------------------------- B1p

# b1p_arm ARM: start 10 containers at once, print the wall time in µs.
b1p_arm() {
	local arm=$1 net k t0 t1 pids=() failed=0
	net=$(net_of "$arm")
	t0=$(now_us)
	for ((k = 1; k <= 10; k++)); do
		dk run -d --name "b1p-$k" --net="$net" "$IMG" sleep 3600 >/dev/null &
		pids+=($!)
	done
	for k in "${pids[@]}"; do wait "$k" || failed=$((failed + 1)); done
	t1=$(now_us)
	rm_containers || return 1
	((failed == 0)) || { echo "bench: B1p $arm: $failed of 10 docker run failed" >&2; return 1; }
	echo $((t1 - t0))
}

bench_B1p() {
	local n budget deadline i arm us line done_=0 d="$WORK/B1p"
	declare -A t=()
	n=$(pairs B1p 5 1)
	budget=$((60 + 40 * n))
	mkdir -p "$d"
	precheck B1p
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" podnet bridge); do
			us=$(b1p_arm "$arm") || return 1
			t[$arm]=$us
			printf '%s\n' "$(ms "$us")" >>"$d/$arm"
			line+=" $arm $(ms "$us") ms"
		done
		calc "${t[podnet]} / ${t[bridge]}" >>"$d/R"
		done_=$((i + 1))
		say "B1p pair $done_/$n:$line -> ratio $(tail -n 1 "$d/R")"
	done
	local rs note
	rs=$(ratio_stats "$d/R" le)
	note="$(deadline_note "$done_" "$n")$done_ pairs; $(cv_note "$d/bridge" "bridge"); $PRE_NOTE"
	row B1p "10 x docker run -d in parallel (wall)" "podnet $(fmt 1 "$(field "$d/podnet" 2)") ms" "bridge $(fmt 1 "$(field "$d/bridge" 2)") ms" \
		"${rs% *}" "${rs#* }" le 1.05 1.25 "$note"
}

# ---------------------------------------------------------------- B2

# http_ok URL: an HTTP answer (any status) from the client netns within 5 s.
http_ok() {
	local code i
	for ((i = 0; i < 10; i++)); do
		code=$("$LAB" client curl -s -m 1 -o /dev/null -w '%{http_code}' "$1" 2>/dev/null) || code=000
		[[ $code != 000 ]] && return 0
		sleep 0.5
	done
	return 1
}

bench_B2() {
	local n budget deadline i arm us line done_=0 d="$WORK/B2" reach=
	declare -A t=()
	n=$(pairs B2 10 2)
	budget=$((60 + 10 * n))
	mkdir -p "$d"
	precheck B2
	# Warm-up, and check that each arm's published port answers.
	for arm in podnet bridge; do
		dk run -d --name b2 --net="$(net_of "$arm")" -p 8080:80 "$IMG" httpd -f -p 80 >/dev/null || return 1
		if http_ok "http://$HOST_IP:8080/"; then reach+="$arm -p answers; "; else reach+="FLAG: $arm -p does NOT answer from the client netns; "; fi
		rm_containers || return 1
	done
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" podnet bridge); do
			us=$(time_us dk run -d --name b2 --net="$(net_of "$arm")" -p 8080:80 "$IMG" httpd -f -p 80) || return 1
			rm_containers || return 1
			t[$arm]=$us
			printf '%s\n' "$(ms "$us")" >>"$d/$arm"
			line+=" $arm $(ms "$us") ms"
		done
		calc "${t[podnet]} / ${t[bridge]}" >>"$d/R"
		done_=$((i + 1))
		say "B2 pair $done_/$n:$line -> ratio $(tail -n 1 "$d/R")"
	done
	local rs note
	rs=$(ratio_stats "$d/R" le)
	note="$(deadline_note "$done_" "$n")$done_ pairs; docker run -d returns; anchor: -d bridge network with docker-proxy (default); ${reach}$(cv_note "$d/bridge" "bridge"); $PRE_NOTE"
	row B2 "docker run -d -p 8080:80 httpd (start)" "podnet $(fmt 1 "$(field "$d/podnet" 2)") ms" "bridge $(fmt 1 "$(field "$d/bridge" 2)") ms" \
		"${rs% *}" "${rs#* }" le 1.0 1.15 "$note"
}

# ---------------------------------------------------------------- B2c

# conntrack_settle: wait (at most 20 s) until the conntrack table is below a
# quarter of its maximum: each arm leaves tens of thousands of entries, and
# a full table would drop connections machine-wide.
conntrack_settle() {
	local max cnt end=$((SECONDS + 20))
	read -r max </proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null || return 0
	while read -r cnt </proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null && ((cnt > max / 4 && SECONDS < end)); do
		sleep 0.5
	done
}

# connrate_arm WHERE ADDR: run the client (CPU 0) from WHERE (client|host),
# print its result line.
connrate_arm() {
	local where=$1 addr=$2 secs out
	secs=$((QUICK ? 1 : 3))
	conntrack_settle
	local cmd=(timeout $((secs + 30)) taskset -c 0 "$WORK/bin/connrate" -addr "$addr" -d "${secs}s" -max 150000)
	if [[ $where == client ]]; then
		out=$("$LAB" client "${cmd[@]}" 2>"$WORK/B2c/err") || { cat "$WORK/B2c/err" >&2; return 1; }
	else
		out=$("$LAB" exec h1 "${cmd[@]}" 2>"$WORK/B2c/err") || { cat "$WORK/B2c/err" >&2; return 1; }
	fi
	[[ -s $WORK/B2c/err ]] && sed 's/^/  /' "$WORK/B2c/err" >>"$WORK/B2c/errors"
	echo "$out"
}

bench_B2c() {
	local n budget deadline i arm out line done_=0 d="$WORK/B2c" pn_pid br_pid pn_ip s1 s2
	declare -A rate=()
	n=$(pairs B2c 5 1)
	budget=$((60 + 40 * n))
	mkdir -p "$d"
	: >"$d/errors"
	precheck B2c
	# The routed context arm: the client netns reaches podnet's subnet
	# through the host (no NAT), like a router of the Kubernetes model would.
	ip -n "$CLIENT_NS" route replace "$PN_SUBNET" via "$HOST_IP" || return 1
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		dk run -d --name c2c-pn --net="$PN_NET" -p 8080:80 "$IMG" sleep 3600 >/dev/null || return 1
		dk run -d --name c2c-br --net="$BR_NET" -p 8081:80 "$IMG" sleep 3600 >/dev/null || return 1
		pn_pid=$(ctr_pid c2c-pn) && br_pid=$(ctr_pid c2c-br) && pn_ip=$(ctr_ip c2c-pn) || return 1
		bg "$d/server-pn.log" nsenter --net="/proc/$pn_pid/ns/net" taskset -c 1 "$WORK/bin/connrate" -serve 0.0.0.0:80 -lifetime 300s
		s1=$BG_PID
		bg "$d/server-br.log" nsenter --net="/proc/$br_pid/ns/net" taskset -c 1 "$WORK/bin/connrate" -serve 0.0.0.0:80 -lifetime 300s
		s2=$BG_PID
		wait_listen "/proc/$pn_pid/ns/net" 80 10 && wait_listen "/proc/$br_pid/ns/net" 80 10 || return 1
		line=
		for arm in $(rotate "$i" podnet docker direct routed); do
			case $arm in
			podnet) out=$(connrate_arm client "$HOST_IP:8080") ;;
			docker) out=$(connrate_arm client "$HOST_IP:8081") ;;
			direct) out=$(connrate_arm host "$pn_ip:80") ;;
			routed) out=$(connrate_arm client "$pn_ip:80") ;;
			esac || { echo "bench: B2c $arm arm failed" >&2; return 1; }
			rate[$arm]=$(kv rate "$out")
			echo "${rate[$arm]}" >>"$d/$arm"
			kv p50_us "$out" >>"$d/$arm.p50"
			kv p99_us "$out" >>"$d/$arm.p99"
			line+=" $arm $(kv rate "$out")/s (p50 $(kv p50_us "$out") µs)"
		done
		kill_pid "$s1"
		kill_pid "$s2"
		wait "$s1" "$s2" 2>/dev/null || true
		rm_containers || return 1
		calc "${rate[podnet]} / ${rate[docker]}" >>"$d/R"
		calc "${rate[podnet]} / ${rate[direct]}" >>"$d/Rdirect"
		calc "${rate[podnet]} / ${rate[routed]}" >>"$d/Rrouted"
		done_=$((i + 1))
		say "B2c pair $done_/$n:$line -> podnet/docker $(tail -n 1 "$d/R"), podnet/direct $(tail -n 1 "$d/Rdirect")"
	done
	ip -n "$CLIENT_NS" route del "$PN_SUBNET" via "$HOST_IP" 2>/dev/null || true
	local rs rd rr note errs cand
	rs=$(ratio_stats "$d/R" ge)
	rd=$(ratio_stats "$d/Rdirect" ge)
	errs=$(awk '{ s += $2 } END { print s + 0 }' "$d/errors")
	cand="podnet $(field "$d/podnet" 2)/s p50 $(field "$d/podnet.p50" 2) p99 $(field "$d/podnet.p99" 2) µs"
	note="$(deadline_note "$done_" "$n")$done_ pairs, $((QUICK ? 1 : 3)) s per arm, sequential connect+RST from the client netns to $HOST_IP; anchor: -d bridge container -p 8081:80 (iptables DNAT); $(cv_note "$d/docker" "docker")"
	((errs == 0)) || note+="; $errs connects failed in all (each arm < 1 %; kinds: $(grep -o 'failed: .*' "$d/errors" | sort -u | sed 's/^failed: //' | paste -sd, -))"
	note+="; $PRE_NOTE"
	row B2c "published-port conn/s vs Docker -p" "$cand" \
		"docker $(field "$d/docker" 2)/s p50 $(field "$d/docker.p50" 2) p99 $(field "$d/docker.p99" 2) µs" \
		"${rs% *}" "${rs#* }" ge 1.0 0.9 "$note"
	note="context: host netns -> container IP:80 (no NAT, and no lab-bridge hop: the client sits one hop closer than in the other arms)"
	row "B2c direct" "published-port conn/s vs direct" "podnet $(field "$d/podnet" 2)/s" \
		"direct $(field "$d/direct" 2)/s p50 $(field "$d/direct.p50" 2) µs" "${rd% *}" "${rd#* }" ge 0.85 - "$note"
	rr=$(ratio_stats "$d/Rrouted" ge)
	note="context: client netns -> container IP:80 routed through the host (route added for the run), no NAT: the same hops as the published path minus the DNAT"
	row "B2c routed" "published-port conn/s vs routed" "podnet $(field "$d/podnet" 2)/s" \
		"routed $(field "$d/routed" 2)/s p50 $(field "$d/routed.p50" 2) µs" "${rr% *}" "${rr#* }" ge 0.85 - "$note"
}

# ---------------------------------------------------------------- B10

# iperf_run CLIENT_NETNS SERVER_NETNS SERVER_IP: one iperf3 test, prints
# "bits_per_second retransmits".
iperf_run() {
	local cns=$1 sns=$2 sip=$3 secs omit spid json bps rtx
	secs=$((QUICK ? 3 : 10))
	omit=$((QUICK ? 1 : 2))
	json=$WORK/B10/last.json
	bg "$WORK/B10/server.log" nsenter --net="$sns" taskset -c 1 iperf3 -s -1 -p 5201
	spid=$BG_PID
	wait_listen "$sns" 5201 10 || return 1
	if ! nsenter --net="$cns" taskset -c 0 timeout $((secs + omit + 30)) \
		iperf3 -c "$sip" -p 5201 -t "$secs" -O "$omit" -J >"$json" 2>"$WORK/B10/client.err"; then
		echo "bench: iperf3 client failed:" >&2
		head -c 600 "$json" "$WORK/B10/client.err" >&2
		wait_exit "$spid" 0
		return 1
	fi
	wait_exit "$spid" 5
	bps=$("$WORK/bin/report" json end.sum_received.bits_per_second <"$json") || return 1
	rtx=$("$WORK/bin/report" json end.sum_sent.retransmits <"$json" 2>/dev/null) || rtx="?"
	echo "$bps $rtx"
}

# b10_arm ARM: the Gbit/s and retransmits of one arm, in fresh namespaces.
b10_arm() {
	local arm=$1 cpid spid sip out
	if [[ $arm == raw ]]; then
		del_raw_netns
		ip netns add "$RAW_A" && ip netns add "$RAW_B" || return 1
		ip -n "$RAW_A" link add eth0 type veth peer name eth0 netns "$RAW_B" || return 1
		ip -n "$RAW_A" addr add 10.251.255.1/24 dev eth0 && ip -n "$RAW_B" addr add 10.251.255.2/24 dev eth0 || return 1
		ip -n "$RAW_A" link set eth0 up && ip -n "$RAW_B" link set eth0 up || return 1
		ip -n "$RAW_A" link set lo up && ip -n "$RAW_B" link set lo up || return 1
		out=$(iperf_run "/run/netns/$RAW_A" "/run/netns/$RAW_B" 10.251.255.2) || return 1
		del_raw_netns
	else
		dk run -d --name b10-c --net="$(net_of "$arm")" "$IMG" sleep 3600 >/dev/null || return 1
		dk run -d --name b10-s --net="$(net_of "$arm")" "$IMG" sleep 3600 >/dev/null || return 1
		cpid=$(ctr_pid b10-c) && spid=$(ctr_pid b10-s) && sip=$(ctr_ip b10-s) || return 1
		out=$(iperf_run "/proc/$cpid/ns/net" "/proc/$spid/ns/net" "$sip") || return 1
		rm_containers || return 1
	fi
	echo "$out"
}

bench_B10() {
	local n budget deadline i arm out line done_=0 d="$WORK/B10"
	declare -A bps=()
	n=$(pairs B10 5 1)
	budget=$((60 + 80 * n))
	mkdir -p "$d"
	precheck B10
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" podnet bridge raw); do
			out=$(b10_arm "$arm") || { echo "bench: B10 $arm arm failed" >&2; return 1; }
			bps[$arm]=${out% *}
			calc "${bps[$arm]} / 1e9" >>"$d/$arm"
			echo "${out#* }" >>"$d/$arm.rtx"
			line+=" $arm $(fmt 2 "$(calc "${bps[$arm]} / 1e9")") Gbit/s (rtx ${out#* })"
		done
		calc "${bps[podnet]} / ${bps[bridge]}" >>"$d/R"
		calc "${bps[podnet]} / ${bps[raw]}" >>"$d/Rraw"
		done_=$((i + 1))
		say "B10 pair $done_/$n:$line -> podnet/bridge $(tail -n 1 "$d/R")"
	done
	local rs note
	rs=$(ratio_stats "$d/R" ge)
	note="$(deadline_note "$done_" "$n")$done_ triples, iperf3 -t $((QUICK ? 3 : 10)) -O $((QUICK ? 1 : 2)), 1 stream, client CPU 0, server CPU 1; raw veth $(fmt 2 "$(field "$d/raw" 2)") Gbit/s, podnet/raw median $(fmt 3 "$(field "$d/Rraw" 2)"); retransmits median podnet $(field "$d/podnet.rtx" 2) bridge $(field "$d/bridge.rtx" 2); $(cv_note "$d/bridge" "bridge"); $PRE_NOTE"
	row B10 "same-host container TCP throughput" "podnet $(fmt 2 "$(field "$d/podnet" 2)") Gbit/s" "bridge $(fmt 2 "$(field "$d/bridge" 2)") Gbit/s" \
		"${rs% *}" "${rs#* }" ge 0.95 0.85 "$note"
}

# ---------------------------------------------------------------- B12

# b12_metric OUT NAME UNIT: the value reported with UNIT on the line of
# benchmark NAME (e.g. BenchmarkB12/writers=3).
b12_metric() {
	awk -v name="$2" -v unit="$3" '
		$1 ~ ("^" name "(-[0-9]+)?$") { for (i = 3; i < NF; i += 2) if ($(i + 1) == unit) { print $i; exit } }' "$1"
}

bench_B12() {
	local n out="$WORK/B12/go-test.out" rc=0 w cand anchor ratio worst note conf p99 extra=()
	n=$(pairs B12 5 1)
	mkdir -p "$WORK/B12"
	precheck B12
	((QUICK)) && extra=(PODNET_B12_ALLOCS=300 PODNET_B12C_CYCLES=1000)
	say "B12: go test -bench B12 -benchtime ${n}x ./ipam/ ${extra[*]}"
	# etcd on tmpfs (rule 4), in a directory of our own: removed even when
	# the test binary is killed.
	mkdir -p "$SHM"
	(cd "$REPO" && env TMPDIR="$SHM" "${extra[@]}" timeout 900 \
		go test -run '^$' -bench B12 -benchtime "${n}x" ./ipam/) >"$out" 2>&1 || rc=$?
	grep -E '^(Benchmark|--- |FAIL|ok|PASS)|pair [0-9]+:|leak|duplicate' "$out" | sed 's/^/  /' || true
	for w in 3 16; do
		ratio=$(b12_metric "$out" "BenchmarkB12/writers=$w" ratio)
		if [[ -z $ratio ]]; then
			note="no result (go test exit $rc; a duplicate address makes it fail: see the output above)"
			error_row "B12/$w" "IPAM allocs/s, $w writers, vs naive" ge "$((w == 3 ? 2 : 5))" 1.0 "$note"
			continue
		fi
		worst=$(b12_metric "$out" "BenchmarkB12/writers=$w" worst-ratio)
		cand="affine $(b12_metric "$out" "BenchmarkB12/writers=$w" affine-allocs/s)/s"
		anchor="naive $(b12_metric "$out" "BenchmarkB12/writers=$w" naive-allocs/s)/s"
		conf=$(b12_metric "$out" "BenchmarkB12/writers=$w" affine-conflicts/alloc)
		p99=$(b12_metric "$out" "BenchmarkB12/writers=$w" affine-p99-ms)
		note="$n pairs; dups $(b12_metric "$out" "BenchmarkB12/writers=$w" dups)"
		note+=", conflicts/alloc affine $conf naive $(b12_metric "$out" "BenchmarkB12/writers=$w" naive-conflicts/alloc)"
		note+=", affine p99 (worst pair) $p99 ms"
		awk -v c="$conf" 'BEGIN { exit !(c > 0.01) }' && note+="; FLAG: affine conflicts/alloc $conf > 0.01 (target)"
		awk -v p="$p99" 'BEGIN { exit !(p > 20) }' && note+="; FLAG: affine p99 $p99 ms > 20 ms (target)"
		((w == 3)) && note+="; $PRE_NOTE"
		row "B12/$w" "IPAM allocs/s, $w writers, vs naive" "$cand" "$anchor" "$ratio" "$(printf '%.3f' "$worst")" \
			ge "$((w == 3 ? 2 : 5))" 1.0 "$note"
	done
	local leak cps
	leak=$(b12_metric "$out" BenchmarkB12cChurn leaked-keys)
	cps=$(b12_metric "$out" BenchmarkB12cChurn cycles/s)
	if [[ -z $leak ]]; then
		error_row B12c "IPAM churn: leaked keys" le 0 0 "no result (go test exit $rc; a leak makes it fail)"
	else
		row B12c "IPAM churn: leaked keys" "$cps cycles/s" "-" "$leak" - le 0 0 \
			"value is the count of leaked etcd keys, not a ratio"
	fi
	((rc == 0)) || return 1
}

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
	del_raw_netns
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

main() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (lab namespaces, dockerd)"
	check_only
	check_pairs
	local tool id need_lab=0
	for tool in go make ip nsenter taskset ss iperf3 awk timeout curl "$DOCKER"; do
		command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh; iperf3: apt-get install iperf3)"
	done
	for id in B1 B1p B2 B2c B10; do selected "$id" && need_lab=1; done
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
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/bin/" ./bench/connrate ./bench/report) || die "building bench/ failed"

	if ((need_lab)); then
		say "lab up: LAB_NAME=$LAB_NAME LAB_DIR=$LAB_DIR LAB_NET=$LAB_NET"
		OWN_LAB=1
		"$LAB" up 1 --etcd embedded 2>&1 | sed 's/^/  /'
		((PIPESTATUS[0] == 0)) || die "lab up failed"
		BUSYBOX_TAR='' "$LAB" exec h1 "$REPO/scripts/busybox-image.sh" | sed 's/^/  /'
		((PIPESTATUS[0] == 0)) || die "importing the busybox image failed"
		dk network create -d podnet --ipam-driver podnet --subnet "$PN_SUBNET" "$PN_NET" >/dev/null ||
			die "docker network create -d podnet failed (log: $LAB_DIR/h1/podnetd.log)"
		dk network create -d bridge --subnet "$BR_SUBNET" "$BR_NET" >/dev/null || die "docker network create -d bridge failed"
		say "networks: $PN_NET (podnet, $PN_SUBNET), $BR_NET (Docker bridge, $BR_SUBNET)"
	fi

	for id in "${ALL_IDS[@]}"; do
		selected "$id" || continue
		run_bench "$id"
	done

	if ((need_lab)); then
		say "podnet plugin request durations of this run ($LAB_DIR/h1/podnetd.log), slowest first:"
		"$LAB" exec h1 cat "$LAB_DIR/h1/podnetd.log" | plugin_durations | sed 's/^/  /' || true
	fi

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
