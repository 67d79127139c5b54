# shellcheck shell=bash
# reach.sh: how soon a new container is reachable from another host
# (scripts/bench.sh, sourced by it; uses lib.sh), on the two-host lab.
#
#   REACH  docker run -d --ip ADDR on h1 until the first ICMP echo reply
#        from ADDR seen from a container on h2 (bench/reach in its netns, one
#        request every 10 ms), timed from just before the docker run. The
#        prober starts before the docker run ("early"); ADDR is a fresh
#        address of the /26 block h1 already claimed (a container kept
#        running there), so the prober knows it and IPAM takes the usual
#        path (no exception route). Median and p99 (nearest rank) over the
#        samples, absolute (no anchor). Context row ("late", interleaved):
#        the prober starts only once docker run has returned.

# ---------------------------------------------------------------- REACH

ip4_int() {
	local IFS=. o
	read -r -a o <<<"$1"
	echo $(((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]))
}

int_ip4() { echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }

# block_route NETNS ADDR VIA: the podnet route (protocol 152) in NETNS that
# covers ADDR through next hop VIA, as PREFIX/LEN; 1 if there is none.
block_route() {
	local a p len mask
	a=$(ip4_int "$2")
	while read -r p _; do
		[[ $p == */* ]] || continue
		len=${p#*/}
		mask=$(((0xffffffff << (32 - len)) & 0xffffffff))
		(((a & mask) == $(ip4_int "${p%/*}"))) && { echo "$p"; return 0; }
	done < <(ip -n "$1" route show proto 152 2>/dev/null | grep -F " via $3 ")
	return 1
}

# pctl FILE P: the P-th percentile (nearest rank) of the numbers in FILE.
pctl() {
	sort -g "$1" | awk -v p="$2" '{ a[NR] = $1 }
		END { if (NR == 0) { print "nan"; exit } i = int(p / 100 * NR); if (i < p / 100 * NR) i++; if (i < 1) i = 1; print a[i] }'
}

# wait_line FILE PREFIX SECS: until a line of FILE starts with PREFIX.
wait_line() {
	local end=$((SECONDS + $3))
	while ((SECONDS <= end)); do
		grep -q "^$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	echo "bench: no '$2' in $1 after $3 s" >&2
	return 1
}

# reach_sample MODE ADDR NAME: start container NAME with address ADDR on h1
# and poll it from the container on h2 (REACH_POLL_PID), from before the
# docker run (MODE early) or from when it returned (late). Prints "reach_us
# run_us seq sent": first reply and docker run's return, both from just
# before the docker run, and the prober's counts.
REACH_POLL_PID=
reach_sample() {
	local mode=$1 addr=$2 name=$3 log="$WORK/REACH/probe.log" ppid='' t0 t1 first line
	local probe=(nsenter --net="/proc/$REACH_POLL_PID/ns/net" taskset -c 0 "$WORK/bin/reach" -addr "$addr" -interval 10ms -timeout 20s)
	: >"$log"
	if [[ $mode == early ]]; then
		bg "$log" "${probe[@]}"
		ppid=$BG_PID
		wait_line "$log" ready 5 || { wait_exit "$ppid" 0; return 1; }
	fi
	t0=$(now_us)
	if ! dkh 1 run -d --name "$name" --net="$VX_NET" --ip "$addr" "$IMG" sleep 3600 >/dev/null; then
		echo "bench: REACH: docker run --ip $addr on h1 failed" >&2
		[[ -z $ppid ]] || wait_exit "$ppid" 0
		return 1
	fi
	t1=$(now_us)
	if [[ $mode == late ]]; then
		bg "$log" "${probe[@]}"
		ppid=$BG_PID
	fi
	wait_exit "$ppid" 25
	line=$(grep -m1 '^first_reply_unix_us=' "$log") || {
		echo "bench: REACH $mode: no reply from $addr: $(tail -n 2 "$log" | paste -sd' ' -)" >&2
		return 1
	}
	first=$(kv first_reply_unix_us "$line")
	echo "$((first - t0)) $((t1 - t0)) $(kv seq "$line") $(kv sent "$line")"
}

bench_REACH() {
	local n budget deadline i k a mode out line r run seq sent keep_ip block base len end idx=0 done_=0 d="$WORK/REACH" flag=
	local cands=()
	n=$(pairs REACH 20 3)
	mkdir -p "$d"
	: >"$d/early.queued"
	precheck REACH
	# h1 claims a block for reach-keep; the samples take fresh addresses of
	# it, which h2 already routes to h1.
	dkh 1 run -d --name reach-keep --net="$VX_NET" "$IMG" sleep 3600 >/dev/null || return 1
	dkh 2 run -d --name reach-poll --net="$VX_NET" "$IMG" sleep 3600 >/dev/null || return 1
	keep_ip=$(ctr_ip_on 1 reach-keep) && REACH_POLL_PID=$(ctr_pid_on 2 reach-poll) || return 1
	end=$((SECONDS + 10))
	until block=$(block_route "$LAB_NAME-h2" "$keep_ip" "$LAB_NET.11"); do
		((SECONDS < end)) || { echo "bench: REACH: h2 has no route to h1 for $keep_ip after 10 s" >&2; return 1; }
		sleep 0.05
	done
	nsenter --net="/proc/$REACH_POLL_PID/ns/net" timeout 15 "$WORK/bin/reach" -addr "$keep_ip" -timeout 10s >/dev/null || {
		echo "bench: REACH: $keep_ip (h1) does not answer ping from the container on h2" >&2
		return 1
	}
	base=$(ip4_int "${block%/*}") len=${block#*/}
	# Not the block's first two addresses or its last (a subnet's network,
	# gateway and broadcast addresses fall there), not reach-keep's.
	for ((k = 2; k < (1 << (32 - len)) - 1; k++)); do
		a=$(int_ip4 $((base + k)))
		[[ $a == "$keep_ip" ]] || cands+=("$a")
	done
	if ((2 * n > ${#cands[@]})); then
		flag="FLAG: only $((${#cands[@]} / 2)) samples per mode (free addresses of block $block); "
		n=$((${#cands[@]} / 2))
	fi
	budget=$((60 + 2 * 10 * n))
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for mode in $(rotate "$i" early late); do
			out=$(reach_sample "$mode" "${cands[idx]}" "reach-$idx") || return 1
			dkh 1 rm -f "reach-$idx" >/dev/null || return 1
			idx=$((idx + 1))
			read -r r run seq sent <<<"$out"
			calc "$r / 1000" >>"$d/$mode.ms"
			calc "$run / 1000" >>"$d/$mode.run"
			calc "($r - $run) / 1000" >>"$d/$mode.after"
			[[ $mode == early && $seq -lt $sent ]] && echo "$seq $sent" >>"$d/early.queued"
			line+=" $mode $(ms "$r") ms (docker run $(ms "$run") ms, reply to probe $seq of $sent)"
			# A lone change each time: the overlay coalesces changes 20 ms apart.
			sleep 0.2
		done
		done_=$((i + 1))
		say "REACH $done_/$n:$line"
	done
	local med p99 note queued
	med=$(field "$d/early.ms" 2) p99=$(pctl "$d/early.ms" 99)
	queued=$(grep -c . "$d/early.queued" || true)
	note="$flag$(deadline_note "$done_" "$n")n=$done_; absolute, no anchor; p99 by nearest rank (with n < 100: the maximum); docker run -d --ip ADDR returned after median $(fmt 0 "$(field "$d/early.run" 2)") ms, first reply median $(fmt 0 "$(field "$d/early.after" 2)") ms after that; $queued of $done_ first replies answered an earlier request than the last one sent (held while h1 resolved ADDR); prober: ICMP echo every 10 ms from h2's container, started before docker run; ADDR: fresh addresses of h1's block $block; $PRE_NOTE"
	row REACH "docker run -d on h1 -> first reply seen from h2" "median $(fmt 0 "$med") ms, p99 $(fmt 0 "$p99") ms" "none (absolute)" \
		"$(calc "$med / 1000")" "p99 $(fmt 3 "$(calc "$p99 / 1000")") s" le 1 - "$note" s
	med=$(field "$d/late.ms" 2) p99=$(pctl "$d/late.ms" 99)
	note="context (no target): the same, interleaved with REACH, but the prober starts only once docker run has returned (median $(fmt 0 "$(field "$d/late.run" 2)") ms); first reply median $(fmt 1 "$(field "$d/late.after" 2)") ms after that"
	row "REACH late" "same, polling from when docker run returned" "median $(fmt 0 "$med") ms, p99 $(fmt 0 "$p99") ms" "none (absolute)" \
		"$(calc "$med / 1000")" "p99 $(fmt 3 "$(calc "$p99 / 1000")") s" le - - "$note" s
}
