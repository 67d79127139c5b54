# shellcheck shell=bash
# overlay.sh: the cross-host data-path benchmarks of scripts/bench.sh
# (sourced by it; uses lib.sh), on the two-host lab, against a hand-built
# flannel-style VXLAN path and raw veth.
#
#   B9   cross-host TCP throughput, container -> container over a podnet
#        vxlan network: iperf3 -t 10 -O 2 -J, 1 stream, client in a container
#        on h1 (its netns via nsenter, CPU 0), server in a container on h2
#        (CPU 1). Anchors in the same pairs: (a) raw veth between two fresh
#        netns; (b) a hand-built flannel-style VXLAN path between the same
#        two lab hosts over the same underlay: in each, a bridge and a
#        container netns on a veth (MTU 1450, default route via the bridge),
#        a VXLAN device (id 42, dstport 8472, nolearning, MTU 1450,
#        txqueuelen 0 as flannel's netlink call leaves it) and, towards the
#        other host, a static `bridge fdb append MAC dev hvx0 dst U`, a
#        permanent neighbor and an onlink route (flannel's vxlan backend),
#        plus flannel's FORWARD accepts. Both arms cross the same netfilter
#        hooks Docker and podnet loaded, so the ratio is podnet's own cost.
#        Rows: podnet/(b), podnet/(a); retransmits and (b)/(a) in the notes.
#        Every arm is built fresh (new containers, new netns) per pair.
#   B9d  the same with the direct-routing network (host-gw: no
#        encapsulation between hosts of one subnet) vs (a): context row, no
#        target. Runs inside B9's pairs when both are selected.
#   B9l  TCP_RR latency on the same paths: bench/rr, one connection,
#        TCP_NODELAY, 1-byte ping-pong for 5 s after a 0.5 s warm-up, client
#        CPU 0, server CPU 1: podnet vxlan vs (b), median of per-pair p50
#        ratios (p99 ratio as a context row); raw veth as context.

# ---------------------------------------------------------------- B9, B9d, B9l

# hand_peer HOST PEER_SUBNET24 PEER_MAC PEER_UNDERLAY: in HOST, flannel's
# three static entries for a peer host: its VTEP MAC in hvx0's FDB with the
# peer's underlay address as destination, a permanent neighbor (the peer's
# .0 address -> that MAC) and an onlink route to the peer's /24 via .0.
hand_peer() {
	ip -n "$1" neigh replace "$2.0" lladdr "$3" dev hvx0 nud permanent &&
		bridge -n "$1" fdb append "$3" dev hvx0 dst "$4" self permanent &&
		ip -n "$1" route add "$2.0/24" via "$2.0" dev hvx0 onlink
}

# hand_up: anchor (b) of B9/B9l, a flannel-style VXLAN path built by hand
# between the same two host namespaces podnet uses (the lab's h1 and h2,
# over the same underlay), so the ratio is podnet's own cost: hcni0, a
# bridge (MTU 1450) with the host's /24 (10.251.252.1, 10.251.253.1) and a
# veth (MTU 1450) to a container netns ($HV_CA, $HV_CB: .2, default route
# via .1); hvx0, the VXLAN device (id 42, flannel's dstport 8472 so it
# shares no socket with podnet's, nolearning, MTU 1450, txqueuelen 0 hence
# noqueue like flannel.1, a fixed MAC) with the host's .0/32; hand_peer
# entries towards the other host; and flannel's FORWARD accepts for its
# /23 (Docker's FORWARD policy is DROP in the lab hosts). hand_down undoes
# it.
hand_up() {
	local h host ctr sub
	hand_down
	for h in 1 2; do
		host=$LAB_NAME-h$h
		if ((h == 1)); then ctr=$HV_CA sub=10.251.252; else ctr=$HV_CB sub=10.251.253; fi
		ip netns add "$ctr" && ip -n "$ctr" link set lo up || return 1
		ip -n "$host" link add hcni0 mtu 1450 type bridge && ip -n "$host" addr add "$sub.1/24" dev hcni0 &&
			ip -n "$host" link set hcni0 up || return 1
		ip -n "$host" link add hveth0 mtu 1450 type veth peer name eth0 netns "$ctr" &&
			ip -n "$host" link set hveth0 master hcni0 up || return 1
		ip -n "$ctr" addr add "$sub.2/24" dev eth0 && ip -n "$ctr" link set eth0 up &&
			ip -n "$ctr" route add default via "$sub.1" || return 1
		ip -n "$host" link add hvx0 address "02:42:0a:fb:fe:0$h" mtu 1450 txqueuelen 0 \
			type vxlan id 42 dstport 8472 local "$LAB_NET.$((10 + h))" dev eth0 nolearning || return 1
		ip -n "$host" addr add "$sub.0/32" dev hvx0 && ip -n "$host" link set hvx0 up || return 1
		ip netns exec "$host" iptables -w -I FORWARD -s 10.251.252.0/23 -j ACCEPT &&
			ip netns exec "$host" iptables -w -I FORWARD -d 10.251.252.0/23 -j ACCEPT || return 1
	done
	hand_peer "$LAB_NAME-h1" 10.251.253 02:42:0a:fb:fe:02 "$LAB_NET.12" &&
		hand_peer "$LAB_NAME-h2" 10.251.252 02:42:0a:fb:fe:01 "$LAB_NET.11"
}

# hand_down: remove what hand_up added, if present.
hand_down() {
	local h host
	for h in 1 2; do
		host=$LAB_NAME-h$h
		[[ -e /run/netns/$host ]] || continue
		ip -n "$host" link del hvx0 2>/dev/null
		ip -n "$host" link del hveth0 2>/dev/null
		ip -n "$host" link del hcni0 2>/dev/null
		while ip netns exec "$host" iptables -w -D FORWARD -s 10.251.252.0/23 -j ACCEPT 2>/dev/null; do :; done
		while ip netns exec "$host" iptables -w -D FORWARD -d 10.251.252.0/23 -j ACCEPT 2>/dev/null; do :; done
	done
	del_own_netns
}

# b9_up ARM: build ARM's path fresh and set P_CNS and P_SNS (the client's
# and the server's netns files) and P_SIP (the server's address). ARM:
# podnet (vxlan network: client container on h1, server container on h2),
# direct (the same on the direct-routing network), hand (anchor b), raw
# (anchor a).
P_CNS='' P_SNS='' P_SIP=''
b9_up() {
	local arm=$1 net p1 p2 rc1=0 rc2=0 cpid spid
	case $arm in
	raw)
		raw_up || return 1
		P_CNS=/run/netns/$RAW_A P_SNS=/run/netns/$RAW_B P_SIP=10.251.255.2
		;;
	hand)
		hand_up || return 1
		P_CNS=/run/netns/$HV_CA P_SNS=/run/netns/$HV_CB P_SIP=$HV_SERVER
		;;
	podnet | direct)
		net=$VX_NET
		[[ $arm == direct ]] && net=$DR_NET
		dkh 1 run -d --name b9-c --net="$net" "$IMG" sleep 3600 >/dev/null &
		p1=$!
		dkh 2 run -d --name b9-s --net="$net" "$IMG" sleep 3600 >/dev/null &
		p2=$!
		wait "$p1" || rc1=$?
		wait "$p2" || rc2=$?
		((rc1 == 0 && rc2 == 0)) || { echo "bench: docker run on $net failed (h1 exit $rc1, h2 exit $rc2)" >&2; return 1; }
		cpid=$(ctr_pid_on 1 b9-c) && spid=$(ctr_pid_on 2 b9-s) && P_SIP=$(ctr_ip_on 2 b9-s) || return 1
		P_CNS=/proc/$cpid/ns/net P_SNS=/proc/$spid/ns/net
		# Until the server answers the client (h1 may still be learning a
		# block h2 just claimed).
		nsenter --net="$P_CNS" timeout 15 "$WORK/bin/reach" -addr "$P_SIP" -timeout 10s >/dev/null || {
			echo "bench: $arm: $P_SIP (h2) does not answer ping from the container on h1" >&2
			return 1
		}
		;;
	*) return 1 ;;
	esac
}

b9_down() {
	case $1 in
	raw) del_own_netns ;;
	hand) hand_down ;;
	*) rm_containers ;;
	esac
}

# rtx_note DIR ARMS...: "retransmits median ARM N, ..." from DIR/ARM.rtx.
rtx_note() {
	local dir=$1 arm out=
	shift
	for arm in "$@"; do out+="${out:+, }$arm $(field "$dir/$arm.rtx" 2)"; done
	echo "retransmits median $out"
}

bench_B9() {
	local n budget deadline i arm out line cc secs omit done_=0 d="$WORK/B9" with_b9=0 with_b9d=0 arms=()
	declare -A bps=()
	selected B9 && with_b9=1
	selected B9d && with_b9d=1
	((with_b9)) && arms+=(podnet hand)
	((with_b9d)) && arms+=(direct)
	arms+=(raw)
	if ((with_b9)); then n=$(pairs B9 5 1); else n=$(pairs B9d 5 1); fi
	secs=$((QUICK ? 3 : 10)) omit=$((QUICK ? 1 : 2))
	budget=$((60 + (secs + omit + 15) * ${#arms[@]} * n))
	mkdir -p "$d"
	: >"$d/cc"
	precheck B9
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" "${arms[@]}"); do
			b9_up "$arm" || { echo "bench: B9 $arm: building the path failed" >&2; return 1; }
			out=$(iperf_run "$d" "$P_CNS" "$P_SNS" "$P_SIP") || { echo "bench: B9 $arm arm failed" >&2; return 1; }
			cc=$("$WORK/bin/report" json end.sender_tcp_congestion <"$d/last.json" 2>/dev/null) || cc='?'
			echo "$arm $cc" >>"$d/cc"
			b9_down "$arm" || return 1
			bps[$arm]=${out% *}
			calc "${bps[$arm]} / 1e9" >>"$d/$arm"
			echo "${out#* }" >>"$d/$arm.rtx"
			line+=" $arm $(fmt 2 "$(calc "${bps[$arm]} / 1e9")") Gbit/s (rtx ${out#* })"
		done
		if ((with_b9)); then
			calc "${bps[podnet]} / ${bps[hand]}" >>"$d/Rb"
			calc "${bps[podnet]} / ${bps[raw]}" >>"$d/Ra"
			calc "${bps[hand]} / ${bps[raw]}" >>"$d/Rba"
		fi
		((with_b9d == 0)) || calc "${bps[direct]} / ${bps[raw]}" >>"$d/Rd"
		done_=$((i + 1))
		say "B9 pair $done_/$n:$line"
	done
	local rs note ccs
	gb() { echo "$(fmt 2 "$(field "$d/$1" 2)") Gbit/s (rtx $(field "$d/$1.rtx" 2))"; }
	ccs=$(awk '{ print $2 }' "$d/cc" | sort -u | paste -sd/ -)
	note="$(deadline_note "$done_" "$n")$done_ pairs, iperf3 -t $secs -O $omit, 1 stream, client CPU 0, server CPU 1, TCP $ccs in every arm"
	if ((with_b9)); then
		rs=$(ratio_stats "$d/Rb" ge)
		note+="; podnet: container on h1 -> container on h2 over $VX_NET (MTU 1450; lab underlay: veths on the root-netns bridge $LAB_NAME-br); (b) hand-built flannel VXLAN between the same two lab hosts, (b)/(a) median $(fmt 3 "$(field "$d/Rba" 2)"); $(rtx_note "$d" "${arms[@]}"); $(cv_note "$d/hand" "(b)"); $(cv_note "$d/raw" "(a)"); $PRE_NOTE"
		row "B9/b" "cross-host TCP throughput vs hand-built VXLAN" "podnet $(gb podnet)" "(b) $(gb hand)" \
			"${rs% *}" "${rs#* }" ge 0.95 - "$note"
		rs=$(ratio_stats "$d/Ra" ge)
		row "B9/a" "cross-host TCP throughput vs raw veth" "podnet $(gb podnet)" "(a) $(gb raw)" \
			"${rs% *}" "${rs#* }" ge 0.80 0.60 "(a): one veth pair between two fresh netns (no bridge, no routing, no encapsulation); same pairs as B9/b"
	fi
	if ((with_b9d)); then
		rs=$(ratio_stats "$d/Rd" ge)
		note="context (no target): network with -o podnet.direct-routing=true, h1 and h2 on one underlay subnet, so blocks are routed over the lab underlay without VXLAN (MTU 1450 all the same); "
		if ((with_b9)); then
			note+="same pairs as B9/b"
		else
			note+="$(deadline_note "$done_" "$n")$done_ pairs; $(rtx_note "$d" "${arms[@]}"); $(cv_note "$d/raw" "(a)"); $PRE_NOTE"
		fi
		row B9d "cross-host TCP throughput, direct routing, vs raw veth" "podnet-direct $(gb direct)" "(a) $(gb raw)" \
			"${rs% *}" "${rs#* }" ge - - "$note"
	fi
}

# bench_B9d: B9d alone (with B9 selected, bench_B9 measures it in its pairs).
bench_B9d() { bench_B9; }

# rr_run DIR CLIENT_NETNS SERVER_NETNS SERVER_IP: one bench/rr run (server
# CPU 1, client CPU 0), prints the client's result line.
rr_run() {
	local dir=$1 cns=$2 sns=$3 sip=$4 secs spid out
	secs=$((QUICK ? 1 : 5))
	bg "$dir/rr-server.log" nsenter --net="$sns" taskset -c 1 "$WORK/bin/rr" -serve 0.0.0.0:5301 -lifetime 120s
	spid=$BG_PID
	wait_listen "$sns" 5301 10 || return 1
	if ! out=$(nsenter --net="$cns" taskset -c 0 timeout $((secs + 30)) \
		"$WORK/bin/rr" -addr "$sip:5301" -d "${secs}s" -warmup 500ms 2>"$dir/rr-client.err"); then
		echo "bench: rr client failed:" >&2
		cat "$dir/rr-client.err" >&2
		wait_exit "$spid" 0
		return 1
	fi
	wait_exit "$spid" 0
	echo "$out"
}

bench_B9l() {
	local n budget deadline i arm out line secs done_=0 d="$WORK/B9l" arms=(podnet hand raw)
	declare -A p50=() p99=()
	n=$(pairs B9l 5 1)
	secs=$((QUICK ? 1 : 5))
	budget=$((60 + (secs + 15) * ${#arms[@]} * n))
	mkdir -p "$d"
	precheck B9l
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" "${arms[@]}"); do
			b9_up "$arm" || { echo "bench: B9l $arm: building the path failed" >&2; return 1; }
			out=$(rr_run "$d" "$P_CNS" "$P_SNS" "$P_SIP") || { echo "bench: B9l $arm arm failed" >&2; return 1; }
			b9_down "$arm" || return 1
			p50[$arm]=$(kv p50_us "$out") p99[$arm]=$(kv p99_us "$out")
			echo "${p50[$arm]}" >>"$d/$arm.p50"
			echo "${p99[$arm]}" >>"$d/$arm.p99"
			kv rate "$out" >>"$d/$arm.rate"
			line+=" $arm p50 ${p50[$arm]} p99 ${p99[$arm]} µs"
		done
		calc "${p50[podnet]} / ${p50[hand]}" >>"$d/R50"
		calc "${p99[podnet]} / ${p99[hand]}" >>"$d/R99"
		calc "${p50[hand]} / ${p50[raw]}" >>"$d/Rba"
		done_=$((i + 1))
		say "B9l pair $done_/$n:$line -> p50 podnet/(b) $(tail -n 1 "$d/R50")"
	done
	local rs note
	lat() { echo "p50 $(field "$d/$1.p50" 2) p99 $(field "$d/$1.p99" 2) µs"; }
	rs=$(ratio_stats "$d/R50" le)
	note="$(deadline_note "$done_" "$n")$done_ pairs; bench/rr: one TCP connection (TCP_NODELAY), 1-byte ping-pong for ${secs} s after 0.5 s warm-up, client CPU 0, server CPU 1; medians of per-run percentiles; podnet: h1 container -> h2 container over $VX_NET; context (a) raw veth $(lat raw), (b)/(a) p50 median $(fmt 3 "$(field "$d/Rba" 2)"); round trips/s podnet $(field "$d/podnet.rate" 2), (b) $(field "$d/hand.rate" 2); $(cv_note "$d/hand.p50" "(b) p50"); $PRE_NOTE"
	row B9l "cross-host TCP_RR p50 vs hand-built VXLAN" "podnet $(lat podnet)" "(b) $(lat hand)" "${rs% *}" "${rs#* }" le 1.10 1.30 "$note"
	rs=$(ratio_stats "$d/R99" le)
	row "B9l p99" "cross-host TCP_RR p99 vs hand-built VXLAN" "podnet p99 $(field "$d/podnet.p99" 2) µs" "(b) p99 $(field "$d/hand.p99" 2) µs" \
		"${rs% *}" "${rs#* }" le - - "context (no target): median of per-pair p99 ratios, same runs as B9l"
}
