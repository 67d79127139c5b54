# shellcheck shell=bash
# services.sh: the service data-plane benchmarks of scripts/bench.sh
# (sourced by it; uses its helpers: row, error_row, pairs, precheck,
# summary, field, calc, fmt, kv, bg, kill_pid, deadline_note, cv_note,
# time_us, rotate, conntrack_settle). They need no lab: every arm builds
# two fresh namespaces, a "host" $LAB_NAME-svcc where the rules and the
# client live, and a backend $LAB_NAME-svcb holding the measured service's
# ten endpoint addresses (10.250.0.10-19 on lo) behind a veth, with
# `connrate -serve` on CPU 1; they are deleted after each arm. The host's
# end of the veth is named like a podnet bridge (pn-svcb): the endpoints
# are where podnet's local endpoints are, so the podnet arm does no source
# NAT, as for a container on this host.
# bench/svcbench programs podnet's engine (package dataplane, the code
# podnetd runs) and writes the kube-proxy-shaped iptables anchors.
#
#   B3   connection rate through a VIP (connrate: connect + RST close from
#        the host netns, nat OUTPUT path, CPU 0, 3 s per arm) with N in
#        {1,100,1000,5000} services x 10 endpoints, the measured service
#        last (svcbench: every connection goes through its 10-endpoint pick
#        chain). Arms per pair, order rotating: podnet; anchor = one DNAT
#        rule loaded by `iptables-restore` (the minimal NAT cost);
#        kube-proxy = its iptables shape with the same N x 10 services on
#        the default `iptables-restore` (the nf_tables backend here),
#        measured service last in KUBE-SERVICES. Row per N: podnet/anchor
#        (target >= 0.95; floor: the kube-proxy ratio of the same run).
#   B4   connect p50 and p99 through podnet minus through the anchor, per
#        pair of B3 at N = 5000 (runs B3 at 5000 only when B3 is not
#        selected).
#   B5   cold programming of 1000 x 10: svcbench load (one Apply (Replace) into
#        an empty table, as podnetd's first) vs one `iptables-restore` of
#        kube-proxy's ruleset for the same services (10 endpoints) with the
#        default binary, each in a fresh netns; legacy's time is a context
#        row (one run).
#   B7   podnet cold 5000 x 10 / cold 1000 x 10, in B5's pairs.
#   B6   one endpoint change (Apply of one service, p50 of 20) with 1000 x 10 and
#        5000 x 10 loaded vs kube-proxy's partial `iptables-restore
#        --noflush` (KUBE-SERVICES and the changed service) with its 1000 x
#        10 ruleset loaded.
#   B13  svcbench steady: 5000 x 10 loaded, the canary running as in
#        podnetd (its first fast minute skipped), idle for 30 s, then 10
#        changes/s for 60 s: idle CPU, CPU per change (with the canary's
#        iptables execs) vs the CPU of one full kube-proxy restore of the
#        same 5000 x 10 services, RSS.
#
# B8 and B14 (etcd write to rule live on 3 hosts; restart re-programming)
# need the control plane: they reuse svc_ns_up, svcbench and the anchors.

readonly SVC_C=$LAB_NAME-svcc SVC_B=$LAB_NAME-svcb
readonly SVC_NS=("$SVC_C" "$SVC_B")

# svc_ns_up: fresh host and backend namespaces (see above).
svc_ns_up() {
	local j
	svc_ns_down
	ip netns add "$SVC_C" && ip netns add "$SVC_B" || return 1
	ip -n "$SVC_C" link add pn-svcb type veth peer name eth0 netns "$SVC_B" || return 1
	ip -n "$SVC_C" -batch - <<-EOF || return 1
		link set lo up
		addr add 10.250.1.1/24 dev pn-svcb
		link set pn-svcb up
		route add default via 10.250.1.2
	EOF
	{
		echo "link set lo up"
		echo "addr add 10.250.1.2/24 dev eth0"
		for j in $(seq 10 19); do echo "addr add 10.250.0.$j/32 dev lo"; done
		echo "link set eth0 up"
		echo "route add default via 10.250.1.1"
	} | ip -n "$SVC_B" -batch - || return 1
}

svc_ns_down() {
	local ns
	for ns in "${SVC_NS[@]}"; do
		[[ -e /run/netns/$ns ]] && { ip netns del "$ns" 2>/dev/null || warn "cannot delete netns $ns"; }
	done
	return 0
}

svcbench() { "$WORK/bin/svcbench" "$@"; }

# svc_rules N EPS MODE: the kube-proxy iptables-restore input (cached).
svc_rules() {
	local f=$WORK/svc-rules/kp-$1x$2-$3
	mkdir -p "$WORK/svc-rules"
	[[ -s $f ]] || svcbench kubeproxy -n "$1" -eps "$2" -mode "$3" >"$f" || return 1
	echo "$f"
}

# svc_rate_arm ARM N DIR: one B3 arm in fresh namespaces; appends "rate
# p50 p99" to DIR/ARM-N and prints it.
svc_rate_arm() {
	local arm=$1 n=$2 d=$3 out sp vip secs
	secs=$((QUICK ? 1 : 3))
	svc_ns_up || return 1
	bg "$d/server.log" ip netns exec "$SVC_B" taskset -c 1 "$WORK/bin/connrate" -serve 0.0.0.0:8080 -lifetime 120s
	sp=$BG_PID
	wait_listen "/run/netns/$SVC_B" 8080 10 || return 1
	vip=$(svcbench vip -n "$n") || return 1
	case $arm in
	podnet) ip netns exec "$SVC_C" "$WORK/bin/svcbench" load -n "$n" -eps 10 >>"$d/load.log" 2>&1 ;;
	anchor) ip netns exec "$SVC_C" iptables-restore <"$(svc_rules "$n" 10 anchor)" ;;
	kubeproxy) ip netns exec "$SVC_C" iptables-restore <"$(svc_rules "$n" 10 full)" ;;
	esac || { echo "bench: $arm: programming $n services failed (see $d/load.log)" >&2; return 1; }
	out=$(timeout $((secs + 30)) ip netns exec "$SVC_C" taskset -c 0 "$WORK/bin/connrate" -addr "$vip:80" -d "${secs}s" -max 150000 2>>"$d/errors") ||
		{ echo "bench: $arm N=$n: connrate failed" >&2; return 1; }
	kill_pid "$sp"
	wait "$sp" 2>/dev/null || true
	svc_ns_down
	echo "$(kv rate "$out") $(kv p50_us "$out") $(kv p99_us "$out")" | tee -a "$d/$arm-$n"
}

bench_B3() {
	local sizes=(1 100 1000 5000) n i arm line done_ budget deadline d="$WORK/B3" np
	selected B3 || sizes=(5000)
	np=$(pairs B3 5 1)
	mkdir -p "$d"
	: >"$d/errors"
	precheck B3
	for n in "${sizes[@]}"; do
		declare -A r=()
		budget=$((180 + 90 * np)) deadline=$((SECONDS + budget)) done_=0
		for ((i = 0; i < np && SECONDS < deadline; i++)); do
			line=
			for arm in $(rotate "$i" podnet anchor kubeproxy); do
				read -r "r[$arm]" "r[$arm.p50]" "r[$arm.p99]" <<<"$(svc_rate_arm "$arm" "$n" "$d")" || return 1
				[[ -n ${r[$arm]} ]] || return 1
				line+=" $arm ${r[$arm]}/s (p50 ${r[$arm.p50]} µs)"
			done
			calc "${r[podnet]} / ${r[anchor]}" >>"$d/R-$n"
			calc "${r[kubeproxy]} / ${r[anchor]}" >>"$d/Rkp-$n"
			calc "${r[podnet.p50]} - ${r[anchor.p50]}" >>"$d/dp50-$n"
			calc "${r[podnet.p99]} - ${r[anchor.p99]}" >>"$d/dp99-$n"
			done_=$((i + 1))
			say "B3 N=$n pair $done_/$np:$line -> podnet/anchor $(tail -n 1 "$d/R-$n")"
		done
		svc_B3_rows "$n" "$done_" "$np"
	done
}

# svc_col FILE N: column N of FILE.
svc_col() { awk -v c="$2" '{ print $c }' "$1"; }

svc_B3_rows() {
	local n=$1 done_=$2 np=$3 d="$WORK/B3" rs kp note
	for f in podnet anchor kubeproxy; do
		svc_col "$d/$f-$n" 1 >"$d/$f-$n.rate"
		svc_col "$d/$f-$n" 2 >"$d/$f-$n.p50"
	done
	rs=$(ratio_stats "$d/R-$n" ge)
	kp=$(field "$d/Rkp-$n" 2)
	note="$(deadline_note "$done_" "$np")$done_ pairs, $((QUICK ? 1 : 3)) s per arm, connect+RST from the host netns (nat OUTPUT) to the last of $n services x 10 endpoints; floor = kube-proxy's ratio in this run ($(fmt 3 "$kp"), its iptables shape for the same services on the default iptables-restore); $(cv_note "$d/anchor-$n.rate" anchor); $PRE_NOTE"
	if selected B3; then
		row "B3 N=$n" "VIP conn/s, $n services x 10 eps" "podnet $(field "$d/podnet-$n.rate" 2)/s p50 $(field "$d/podnet-$n.p50" 2) µs" \
			"anchor $(field "$d/anchor-$n.rate" 2)/s p50 $(field "$d/anchor-$n.p50" 2) µs" "${rs% *}" "${rs#* }" ge 0.95 "$(fmt 3 "$kp")" "$note"
		row "B3 kp N=$n" "kube-proxy iptables shape, $n services" "kube-proxy $(field "$d/kubeproxy-$n.rate" 2)/s p50 $(field "$d/kubeproxy-$n.p50" 2) µs" \
			"anchor $(field "$d/anchor-$n.rate" 2)/s" "$(fmt 3 "$kp")" "min $(fmt 3 "$(field "$d/Rkp-$n" 3)")" ge - - "context: the floor of B3 N=$n"
	fi
	if [[ $n == 5000 ]] && selected B4; then
		row "B4 p50" "connect p50 at 5000 services minus anchor" "podnet p50 $(field "$d/podnet-$n.p50" 2) µs" \
			"anchor p50 $(field "$d/anchor-$n.p50" 2) µs" "$(field "$d/dp50-$n" 2)" "max $(fmt 1 "$(field "$d/dp50-$n" 4)") µs" le 2 25 \
			"median of per-pair differences over $done_ pairs (B3's arms at N=5000); $PRE_NOTE" µs
		row "B4 p99" "connect p99 at 5000 services minus anchor" "podnet" "anchor" "$(field "$d/dp99-$n" 2)" \
			"max $(fmt 1 "$(field "$d/dp99-$n" 4)") µs" le 15 - "median of per-pair differences" µs
	fi
}

# svc_cold N: podnet's cold programming of N x 10 in a fresh namespace, ms.
svc_cold() {
	local out
	svc_ns_up || return 1
	out=$(ip netns exec "$SVC_C" "$WORK/bin/svcbench" load -n "$1" -eps 10) || return 1
	svc_ns_down
	kv cold_ms "$out"
}

# svc_restore_ms FILE [BINARY]: time of one restore in a fresh namespace, ms.
svc_restore_ms() {
	local f=$1 bin=${2:-iptables-restore} us
	svc_ns_up || return 1
	us=$(time_us ip netns exec "$SVC_C" "$bin" "$f") || return 1
	svc_ns_down
	calc "$us / 1000"
}

bench_B5() {
	local np i arm line d="$WORK/B5" kp done_=0 deadline want7=0
	selected B7 && want7=1
	np=$(pairs B5 5 1)
	mkdir -p "$d"
	precheck B5
	kp=$(svc_rules 1000 10 full)
	deadline=$((SECONDS + 300 + 60 * np))
	for ((i = 0; i < np && SECONDS < deadline; i++)); do
		declare -A t=()
		line=
		local arms=(podnet1000 restore)
		((want7)) && arms+=(podnet5000)
		for arm in $(rotate "$i" "${arms[@]}"); do
			case $arm in
			podnet1000) t[$arm]=$(svc_cold 1000) ;;
			podnet5000) t[$arm]=$(svc_cold 5000) ;;
			restore) t[$arm]=$(svc_restore_ms "$kp") ;;
			esac || return 1
			echo "${t[$arm]}" >>"$d/$arm"
			line+=" $arm ${t[$arm]} ms"
		done
		calc "${t[podnet1000]} / ${t[restore]}" >>"$d/R"
		((want7)) && calc "${t[podnet5000]} / ${t[podnet1000]}" >>"$d/R7"
		done_=$((i + 1))
		say "B5 pair $done_/$np:$line"
	done
	local legacy="not measured"
	if command -v iptables-legacy-restore >/dev/null; then
		legacy="$(fmt 0 "$(svc_restore_ms "$kp" iptables-legacy-restore)") ms"
	fi
	local rs note
	rs=$(ratio_stats "$d/R" le)
	note="$(deadline_note "$done_" "$np")$done_ pairs, each arm in a fresh netns; anchor: one iptables-restore (the default binary, nf_tables backend) of kube-proxy's iptables rules for the same 1000 x 10 services; iptables-legacy-restore: $legacy (context); $(cv_note "$d/restore" restore); $PRE_NOTE"
	if selected B5; then
		row B5 "cold programming 1000 x 10 vs kube-proxy restore" "podnet $(field "$d/podnet1000" 2) ms" \
			"iptables-restore $(fmt 0 "$(field "$d/restore" 2)") ms" "${rs% *}" "${rs#* }" le 1.0 1.5 "$note"
		row "B5 abs" "cold programming 1000 x 10, absolute" "podnet $(field "$d/podnet1000" 2) ms" "none (absolute)" \
			"$(field "$d/podnet1000" 2)" "max $(field "$d/podnet1000" 4) ms" le 1000 - "one Apply (Replace) into an empty table (build + one netlink batch)" ms
	fi
	if ((want7)); then
		rs=$(ratio_stats "$d/R7" le)
		row B7 "cold 5000 x 10 / cold 1000 x 10" "podnet 5000: $(field "$d/podnet5000" 2) ms" \
			"podnet 1000: $(field "$d/podnet1000" 2) ms" "${rs% *}" "${rs#* }" le 6 15 "median of per-pair ratios, $done_ pairs (B5's); $PRE_NOTE"
	fi
}

bench_B7() { selected B5 || bench_B5; }

bench_B6() {
	local np i d="$WORK/B6" out kp part done_=0 deadline line
	np=$(pairs B6 3 1)
	mkdir -p "$d"
	precheck B6
	kp=$(svc_rules 1000 10 full)
	part=$(svc_rules 1000 10 partial)
	deadline=$((SECONDS + 300 + 90 * np))
	for ((i = 0; i < np && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" p1000 p5000 partial); do
			case $arm in
			p1000 | p5000)
				svc_ns_up || return 1
				out=$(ip netns exec "$SVC_C" "$WORK/bin/svcbench" change -n "${arm#p}" -eps 10 -changes 20) || return 1
				svc_ns_down
				kv change_p50_ms "$out" >>"$d/$arm"
				kv cpu_ms_per_change "$out" >>"$d/$arm.cpu"
				line+=" $arm $(kv change_p50_ms "$out") ms"
				;;
			partial)
				svc_ns_up || return 1
				ip netns exec "$SVC_C" iptables-restore <"$kp" || return 1
				time_us ip netns exec "$SVC_C" iptables-restore --noflush "$part" | awk '{ print $1 / 1000 }' >>"$d/partial" || return 1
				svc_ns_down
				line+=" partial $(tail -n 1 "$d/partial") ms"
				;;
			esac
		done
		calc "$(tail -n 1 "$d/p1000") / $(tail -n 1 "$d/partial")" >>"$d/R"
		calc "$(tail -n 1 "$d/p5000") / $(tail -n 1 "$d/p1000")" >>"$d/G"
		done_=$((i + 1))
		say "B6 pair $done_/$np:$line"
	done
	local rs gs note
	rs=$(ratio_stats "$d/R" le)
	gs=$(ratio_stats "$d/G" le)
	note="$(deadline_note "$done_" "$np")$done_ pairs; per arm the median of 20 Apply calls of one service (one endpoint replaced: one nftables transaction, no process exec), $(fmt 3 "$(field "$d/p1000.cpu" 2)") ms CPU each; $PRE_NOTE"
	row "B6 1000" "one change with 1000 x 10 loaded" "podnet $(field "$d/p1000" 2) ms" "none (absolute)" \
		"$(field "$d/p1000" 2)" "max $(field "$d/p1000" 4) ms" le 100 - "$note" ms
	row "B6 vs kp" "one change vs kube-proxy partial restore (1000)" "podnet $(field "$d/p1000" 2) ms" \
		"partial iptables-restore $(fmt 1 "$(field "$d/partial" 2)") ms" "${rs% *}" "${rs#* }" le 1.0 2.0 \
		"anchor: iptables-restore --noflush of KUBE-SERVICES and the changed service, kube-proxy's 1000 x 10 loaded (default binary)"
	row "B6 growth" "one change: 5000 x 10 / 1000 x 10" "podnet 5000: $(field "$d/p5000" 2) ms" \
		"podnet 1000: $(field "$d/p1000" 2) ms" "${gs% *}" "${gs#* }" le 1.5 - "median of per-pair ratios"
}

bench_B13() {
	local d="$WORK/B13" out idle dur kp anchor_cpu
	mkdir -p "$d"
	precheck B13
	idle=$((QUICK ? 5 : 30)) dur=$((QUICK ? 10 : 60))
	kp=$(svc_rules 5000 10 full)
	svc_ns_up || return 1
	anchor_cpu=$({ /usr/bin/time -f "%U %S" ip netns exec "$SVC_C" iptables-restore "$kp"; } 2>&1 >/dev/null | tail -n 1 |
		awk '{ print ($1 + $2) * 1000 }') || return 1
	svc_ns_down
	svc_ns_up || return 1
	say "B13: 5000 x 10 loaded, canary running: 65 s warm-up, ${idle} s idle, ${dur} s at 10 changes/s"
	out=$(ip netns exec "$SVC_C" "$WORK/bin/svcbench" steady -n 5000 -eps 10 -rate 10 -d "${dur}s" -idle "${idle}s") || return 1
	svc_ns_down
	echo "$out" >"$d/steady"
	local per ratio
	per=$(kv cpu_ms_per_change "$out")
	ratio=$(calc "$per / $anchor_cpu" "$anchor_cpu")
	row "B13 cpu" "CPU per change, 5000 x 10 at 10 changes/s" "podnet $per ms CPU/change" \
		"full kube-proxy restore (5000 x 10): $(fmt 0 "$anchor_cpu") ms CPU" "$ratio" "-" le 0.02 0.2 \
		"one run; the process's CPU and its children's (canary iptables execs) over ${dur} s, $(kv busy_cpu_pct "$out")% of a core; anchor: CPU of one iptables-restore of kube-proxy's rules for the same services (default binary); $PRE_NOTE"
	row "B13 idle" "idle CPU, 5000 x 10 loaded" "podnet $(kv idle_cpu_pct "$out")% + canary execs $(kv idle_children_cpu_pct "$out")%" \
		"none (absolute)" "$(calc "$(kv idle_cpu_pct "$out") + $(kv idle_children_cpu_pct "$out")")" "-" le 1 - \
		"over ${idle} s after the canary's first minute (it checks every 10 s then, as in podnetd)" "%"
	row "B13 rss" "RSS with 5000 x 10 after the changes" "podnet $(kv rss_mb "$out") MB (peak $(kv hwm_mb "$out") MB)" \
		"none (absolute)" "$(kv rss_mb "$out")" "peak $(kv hwm_mb "$out") MB" le 100 - \
		"VmRSS of the engine's process after the changes (svcbench: the engine alone, not all of podnetd); the peak is the cold load's" MB
}

bench_B4() { selected B3 || bench_B3; }
