# shellcheck shell=bash
# lib.sh: the helpers every benchmark family of scripts/bench.sh uses
# (sourced by it): logging, the cleanup of what a run started (processes
# by PID, its own namespaces, the lab's containers), docker on a lab host,
# arithmetic and the report tool, result rows, pair counts and time
# budgets, the load check before each benchmark, background processes,
# containers' PIDs and addresses.

say() { printf 'bench: [%4ds] %s\n' "$((SECONDS - T0))" "$*"; }
warn() { echo "bench: warning: $*" >&2; }
die() {
	echo "bench: error: $*" >&2
	exit 2
}


# ---------------------------------------------------------------- cleanup

# kill_pid PID: TERM, then KILL after 5 s, if PID is still one we started
# (its command line names iperf3 or one of our tools in $WORK/bin: guards
# against PID reuse).
kill_pid() {
	local pid=$1 i cmd
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 0
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
	[[ $cmd == *iperf3* || (-n $WORK && $cmd == *"$WORK/bin/"*) ]] || return 0
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

# del_own_netns: the namespaces the benchmarks build by hand (raw veth,
# hand-built VXLAN path), if present.
del_own_netns() {
	local ns
	for ns in "$RAW_A" "$RAW_B" "$HV_CA" "$HV_CB" "$B11_LAN" "${SVC_NS[@]}" "${POL_NS[@]}"; do
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
	del_own_netns
	lab_down
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

dk() { dkh 1 "$@"; }

# dkh I ARGS...: docker on lab host hI.
dkh() {
	local i=$1
	shift
	timeout "${DK_TIMEOUT:-120}" "$DOCKER" -H "unix://$LAB_DIR/h$i/docker.sock" "$@"
}

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

ctr_pid() { ctr_pid_on 1 "$1"; }
ctr_ip() { ctr_ip_on 1 "$1"; }

# ctr_pid_on I NAME: the PID of container NAME on host hI.
ctr_pid_on() {
	local pid
	pid=$(dkh "$1" inspect -f '{{.State.Pid}}' "$2") || return 1
	[[ $pid =~ ^[1-9][0-9]*$ ]] || { echo "bench: container $2 on h$1 has no PID ($pid)" >&2; return 1; }
	echo "$pid"
}

# ctr_ip_on I NAME: the IPv4 address of container NAME on host hI.
ctr_ip_on() {
	local ip
	ip=$(dkh "$1" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$2") || return 1
	[[ $ip =~ ^[0-9.]+$ ]] || { echo "bench: container $2 on h$1 has no IPv4 address ('$ip')" >&2; return 1; }
	echo "$ip"
}

# rm_containers: remove every container on every host of the lab.
rm_containers() {
	local i ids
	for ((i = 1; i <= LAB_HOSTS; i++)); do
		ids=$(dkh "$i" ps -aq) || return 1
		# shellcheck disable=SC2086 # one ID per word
		[[ -z $ids ]] || dkh "$i" rm -f $ids >/dev/null || return 1
	done
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
