# shellcheck shell=bash
# throughput.sh: the one-host throughput and LAN benchmarks of
# scripts/bench.sh (sourced by it; uses lib.sh): iperf3 between
# containers, macvlan on the one-host lab, ipvlan in the QEMU guest.
#
#   B10  iperf3 single stream -t 10 -O 2 between two containers of the same
#        network, run in their netns via nsenter, client CPU 0, server CPU 1:
#        podnet vs bridge; context: raw veth between two fresh netns.
#   B11  macvlan, on the one-host lab: a veth in h1 is the parent of both
#        a podnet macvlan network (10.251.66.0/24) and Docker's built-in
#        macvlan network (10.251.67.0/24); its peer is eth0 of a "LAN"
#        netns holding both gateways. Start: docker run --rm IMG true on
#        each, interleaved pairs, T(podnet)/T(docker macvlan). Throughput
#        (row B11t): iperf3 -t 10 -O 2, 1 stream, client in the container's
#        netns (CPU 0), server in the LAN netns (CPU 1): podnet/docker.
#   B11i ipvlan l2, the same pair (start; container-to-LAN throughput) in
#        the QEMU guest on Debian's kernel (scripts/vm.sh bench): context
#        rows only (emulated CPU: no target). Needs no lab.

# ---------------------------------------------------------------- B10

# iperf_run DIR CLIENT_NETNS SERVER_NETNS SERVER_IP: one iperf3 test (JSON
# and logs in DIR), prints "bits_per_second retransmits".
iperf_run() {
	local dir=$1 cns=$2 sns=$3 sip=$4 secs omit spid json bps rtx
	secs=$((QUICK ? 3 : 10))
	omit=$((QUICK ? 1 : 2))
	json=$dir/last.json
	bg "$dir/server.log" nsenter --net="$sns" taskset -c 1 iperf3 -s -1 -p 5201
	spid=$BG_PID
	wait_listen "$sns" 5201 10 || return 1
	if ! nsenter --net="$cns" taskset -c 0 timeout $((secs + omit + 30)) \
		iperf3 -c "$sip" -p 5201 -t "$secs" -O "$omit" -J >"$json" 2>"$dir/client.err"; then
		echo "bench: iperf3 client failed:" >&2
		head -c 600 "$json" "$dir/client.err" >&2
		wait_exit "$spid" 0
		return 1
	fi
	wait_exit "$spid" 5
	bps=$("$WORK/bin/report" json end.sum_received.bits_per_second <"$json") || return 1
	rtx=$("$WORK/bin/report" json end.sum_sent.retransmits <"$json" 2>/dev/null) || rtx="?"
	echo "$bps $rtx"
}

# raw_up: the raw veth anchor in fresh namespaces: $RAW_A (10.251.255.1)
# and $RAW_B (10.251.255.2) joined by one veth pair.
raw_up() {
	del_own_netns
	ip netns add "$RAW_A" && ip netns add "$RAW_B" || return 1
	ip -n "$RAW_A" link add eth0 type veth peer name eth0 netns "$RAW_B" || return 1
	ip -n "$RAW_A" addr add 10.251.255.1/24 dev eth0 && ip -n "$RAW_B" addr add 10.251.255.2/24 dev eth0 || return 1
	ip -n "$RAW_A" link set eth0 up && ip -n "$RAW_B" link set eth0 up || return 1
	ip -n "$RAW_A" link set lo up && ip -n "$RAW_B" link set lo up || return 1
}

# b10_arm ARM: the Gbit/s and retransmits of one arm, in fresh namespaces.
b10_arm() {
	local arm=$1 cpid spid sip out
	if [[ $arm == raw ]]; then
		raw_up || return 1
		out=$(iperf_run "$WORK/B10" "/run/netns/$RAW_A" "/run/netns/$RAW_B" 10.251.255.2) || return 1
		del_own_netns
	else
		dk run -d --name b10-c --net="$(net_of "$arm")" "$IMG" sleep 3600 >/dev/null || return 1
		dk run -d --name b10-s --net="$(net_of "$arm")" "$IMG" sleep 3600 >/dev/null || return 1
		cpid=$(ctr_pid b10-c) && spid=$(ctr_pid b10-s) && sip=$(ctr_ip b10-s) || return 1
		out=$(iperf_run "$WORK/B10" "/proc/$cpid/ns/net" "/proc/$spid/ns/net" "$sip") || return 1
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

# ---------------------------------------------------------------- B11

# b11_up: the LAN netns, the parent veth in h1 and both macvlan networks.
b11_up() {
	ip netns add "$B11_LAN" || return 1
	ip -n "$LAB_NAME-h1" link add "$B11_PARENT" type veth peer name eth0 netns "$B11_LAN" || return 1
	ip -n "$LAB_NAME-h1" link set "$B11_PARENT" up && ip -n "$B11_LAN" link set eth0 up && ip -n "$B11_LAN" link set lo up || return 1
	ip -n "$B11_LAN" addr add 10.251.66.1/24 dev eth0 && ip -n "$B11_LAN" addr add 10.251.67.1/24 dev eth0 || return 1
	dk network create -d podnet --ipam-driver podnet -o mode=macvlan -o parent="$B11_PARENT" \
		--subnet 10.251.66.0/24 --gateway 10.251.66.1 "$B11_PN" >/dev/null || return 1
	dk network create -d macvlan -o parent="$B11_PARENT" --subnet 10.251.67.0/24 --gateway 10.251.67.1 "$B11_DK" >/dev/null
}

b11_down() {
	rm_containers
	dk network rm "$B11_PN" "$B11_DK" >/dev/null 2>&1
	ip -n "$LAB_NAME-h1" link del "$B11_PARENT" 2>/dev/null
	del_own_netns
	return 0
}

# b11_tput NET SERVER_IP: Gbit/s and retransmits, container -> LAN.
b11_tput() {
	local cpid out
	dk run -d --name b11-c --net="$1" "$IMG" sleep 3600 >/dev/null || return 1
	cpid=$(ctr_pid b11-c) || return 1
	out=$(iperf_run "$WORK/B11" "/proc/$cpid/ns/net" "/run/netns/$B11_LAN" "$2") || return 1
	rm_containers || return 1
	echo "$out"
}

bench_B11() {
	local n budget deadline i arm us out line done_=0 tdone=0 d="$WORK/B11"
	declare -A t=() bps=() ip=([$B11_PN]=10.251.66.1 [$B11_DK]=10.251.67.1)
	n=$(pairs B11 10 2)
	budget=$((90 + 40 * n))
	mkdir -p "$d"
	precheck B11
	b11_up || { b11_down; return 1; }
	for arm in "$B11_PN" "$B11_DK"; do time_us dk run --rm --net="$arm" "$IMG" true >/dev/null || { b11_down; return 1; }; done
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" "$B11_PN" "$B11_DK"); do
			us=$(time_us dk run --rm --net="$arm" "$IMG" true) || { b11_down; return 1; }
			t[$arm]=$us
			printf '%s\n' "$(ms "$us")" >>"$d/$arm.start"
			line+=" $arm $(ms "$us") ms"
		done
		calc "${t[$B11_PN]} / ${t[$B11_DK]}" >>"$d/R"
		if ((i % 2 == 0)); then # throughput every other pair: 2 x 12 s
			for arm in $(rotate "$((i / 2))" "$B11_PN" "$B11_DK"); do
				out=$(b11_tput "$arm" "${ip[$arm]}") || { b11_down; return 1; }
				bps[$arm]=${out% *}
				calc "${bps[$arm]} / 1e9" >>"$d/$arm.gbps"
				line+=" $arm $(fmt 2 "$(calc "${bps[$arm]} / 1e9")") Gbit/s"
			done
			calc "${bps[$B11_PN]} / ${bps[$B11_DK]}" >>"$d/Rt"
			tdone=$((tdone + 1))
		fi
		done_=$((i + 1))
		say "B11 pair $done_/$n:$line -> start podnet/docker $(tail -n 1 "$d/R")"
	done
	b11_down
	local rs note
	rs=$(ratio_stats "$d/R" le)
	note="$(deadline_note "$done_" "$n")$done_ pairs; same veth parent; anchor = Docker's built-in macvlan driver; $(cv_note "$d/$B11_DK.start" "docker macvlan"); $PRE_NOTE"
	row B11 "docker run --rm true on macvlan" "podnet $(fmt 1 "$(field "$d/$B11_PN.start" 2)") ms" \
		"docker macvlan $(fmt 1 "$(field "$d/$B11_DK.start" 2)") ms" "${rs% *}" "${rs#* }" le 1.05 1.10 "$note"
	rs=$(ratio_stats "$d/Rt" ge)
	note="$tdone pairs, iperf3 -t $((QUICK ? 3 : 10)), 1 stream, container (CPU 0) -> LAN netns (CPU 1); $(cv_note "$d/$B11_DK.gbps" "docker macvlan")"
	row B11t "container-to-LAN TCP throughput on macvlan" "podnet $(fmt 2 "$(field "$d/$B11_PN.gbps" 2)") Gbit/s" \
		"docker macvlan $(fmt 2 "$(field "$d/$B11_DK.gbps" 2)") Gbit/s" "${rs% *}" "${rs#* }" ge 0.97 0.90 "$note"
}

# bench_B11i: the ipvlan pair in the QEMU guest (scripts/vm.sh bench); the
# guest prints "B11I start PODNET_MS DOCKER_MS" and "B11I tput PODNET_BPS
# DOCKER_BPS" per pair.
bench_B11i() {
	local n d="$WORK/B11i" line
	n=$(pairs B11i 3 1)
	mkdir -p "$d"
	precheck B11i
	BENCH_VM_PAIRS=$n BENCH_VM_SECS=$((QUICK ? 3 : 5)) "$REPO/scripts/vm.sh" bench >"$d/console.log" 2>&1 ||
		{ tail -30 "$d/console.log" >&2; return 1; }
	while read -r _ kind p k; do
		case $kind in
		start) calc "$p / $k" >>"$d/R" && echo "$p" >>"$d/pn.start" && echo "$k" >>"$d/dk.start" ;;
		tput) calc "$p / $k" >>"$d/Rt" && calc "$p / 1e9" >>"$d/pn.gbps" && calc "$k / 1e9" >>"$d/dk.gbps" ;;
		esac
	done < <(grep '^B11I ' "$d/console.log")
	[[ -s $d/R && -s $d/Rt ]] || { echo "bench: B11i: no samples from the guest" >&2; tail -30 "$d/console.log" >&2; return 1; }
	line=$(ratio_stats "$d/R" le)
	row B11i "docker run --rm true on ipvlan l2 (QEMU guest)" "podnet $(fmt 0 "$(field "$d/pn.start" 2)") ms" \
		"docker ipvlan $(fmt 0 "$(field "$d/dk.start" 2)") ms" "${line% *}" "${line#* }" le - - \
		"context (emulated CPU, no target): $(grep -c . "$d/R") pairs in the guest, Debian's kernel"
	line=$(ratio_stats "$d/Rt" ge)
	row "B11i t" "container-to-LAN TCP throughput on ipvlan l2 (QEMU guest)" "podnet $(fmt 2 "$(field "$d/pn.gbps" 2)") Gbit/s" \
		"docker ipvlan $(fmt 2 "$(field "$d/dk.gbps" 2)") Gbit/s" "${line% *}" "${line#* }" ge - - \
		"context (emulated CPU, no target): iperf3 $((QUICK ? 3 : 5)) s per arm in the guest"
}
