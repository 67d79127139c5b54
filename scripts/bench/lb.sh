# shellcheck shell=bash
# lb.sh: the LoadBalancer benchmarks of scripts/bench.sh (sourced by it;
# uses its helpers: row, error_row, pairs, precheck, field, calc, fmt,
# kv, rotate, dkh, pnctl, ratio_stats, deadline_note, bg, kill_pid,
# wait_listen, ctr_pid_on, connrate_arm's conntrack_settle). They run on
# the 3-host lab (h1..h3, a 3-member etcd cluster) with its vxlan network
# $SVCLAB_NET, and a real router: BIRD 2 in the lab's client namespace
# peering with every host (hold time 3 s), as the client's gateway to
# the BGP pool. The pools: L2 $LAB_NET.240/28 (on the lab's LAN), BGP
# $LB_BGP_CIDR.
#
#   B18  failover. L2: a service with externalTrafficPolicy Local and an
#        endpoint (netcheck id-server) on every host; the client probes
#        its address every 20 ms (bench/lbprobe, 200 ms per attempt).
#        The host answering ARP for it has its LAN link taken down (the
#        lab bridge's side of its veth), timed from just before `ip link
#        set down` to the client's first answer after it; the link comes
#        back and the next pair fails over the new host. Anchor: the host
#        liveness TTL (30 s, podnetd's default) — the ratio is failover /
#        TTL; target 5 s (an announcer lease of 3 s, shorter than the
#        liveness), floor TTL + 3 s. BGP row: the same with a BGP pool,
#        taking down the host the client's ECMP route sends its flow to
#        (`ip route get`); the router withdraws it when the hold timer
#        (3 s) runs out. Anchor: that hold time; target hold + 1 s.
#   B19  data path: conn/s (bench/connrate, connect + RST, 3 s per arm)
#        from the client to one endpoint (connrate -serve in a container
#        on h1) through the service's L2 address, its BGP address (one
#        route, via h1: Local policy) and the same service's NodePort on
#        h1 — the anchor — interleaved per pair. Rows: L2 / NodePort and
#        BGP / NodePort (target 0.97, floor 0.90).

readonly LB_BGP_CIDR=${BENCH_LB_BGP_CIDR:-10.251.200.0/24}
readonly LB_HOLD=3
LB_RUN=0

# lb_wait_route ADDR SECS VIA...: until the client's route to ADDR goes
# via exactly VIA... (the router's sessions with those hosts are up).
lb_wait_route() {
	local addr=$1 end=$((SECONDS + $2)) got want
	shift 2
	want=$(printf 'via %s\n' "$@" | sort | paste -sd' ')
	while ((SECONDS < end)); do
		got=$(ip -n "$CLIENT_NS" route show "$addr/32" proto bird 2>/dev/null | grep -o 'via [0-9.]*' | sort -u | paste -sd' ')
		[[ $got == "$want" ]] && return 0
		sleep 0.2
	done
	echo "bench: the client's route to $addr is '${got:-none}', want '$want', after the wait" >&2
	return 1
}

# lb_bird_up: BIRD in the client netns, peering with h1..h3.
lb_bird_up() {
	local d=$WORK/bird i
	mkdir -p "$d"
	{
		echo "router id $LAB_NET.2;"
		echo "protocol device {}"
		echo "protocol kernel { ipv4 { export all; import none; }; merge paths on; learn off; }"
		echo "template bgp hosts { local $LAB_NET.2 as 64513; ipv4 { import all; export none; }; hold time $LB_HOLD; connect retry time 1; error wait time 1,5; }"
		for i in 1 2 3; do echo "protocol bgp h$i from hosts { neighbor $LAB_NET.$((10 + i)) as 64512; }"; done
	} >"$d/bird.conf"
	[[ -f $d/bird.pid ]] && return 0
	nsenter --net="/run/netns/$CLIENT_NS" bird -c "$d/bird.conf" -s "$d/bird.ctl" -P "$d/bird.pid" || return 1
	cat "$d/bird.pid" >>"$WORK/pids"
}

# lb_setup: the pools, the peer and the backends (once for both
# benchmarks).
lb_setup() {
	local f=$WORK/lb.yaml i
	[[ -f $WORK/lb.ready ]] && return 0
	command -v bird >/dev/null || { echo "bench: bird is missing (apt-get install bird2: scripts/deps.sh)" >&2; return 1; }
	lb_bird_up || return 1
	cat >"$f" <<EOF
- {kind: LoadBalancerPool, name: bench-lan, cidrs: [$LAB_NET.240/28]}
- {kind: LoadBalancerPool, name: bench-routed, mode: BGP, cidrs: [$LB_BGP_CIDR]}
- {kind: BGPPeer, name: bench-router, peerAddress: $LAB_NET.2, peerASN: 64513, myASN: 64512, holdTime: ${LB_HOLD}s}
EOF
	pnctl 1 apply -f "$f" >/dev/null || return 1
	for i in 1 2 3; do
		dkh "$i" run -d --name "b18-h$i" --net "$SVCLAB_NET" -l app=b18 "$IMG" netcheck id-server 8080 "h$i" >/dev/null || return 1
	done
	touch "$WORK/lb.ready"
}

# lb_announcers NAME: the hosts announcing service NAME's address.
lb_announcers() {
	local out i h hosts=()
	out=$(pnctl 1 service get "$1" -o json) || return 1
	for i in 0 1 2; do
		h=$("$WORK/bin/report" json "status.loadBalancer.announcers.$i" <<<"$out" 2>/dev/null) || break
		hosts+=("$h")
	done
	echo "${hosts[*]}"
}

# lb_wait_announced NAME COUNT SECS: until NAME is announced by COUNT hosts.
lb_wait_announced() {
	local end=$((SECONDS + $3)) a
	while ((SECONDS < end)); do
		a=$(lb_announcers "$1") && (($(wc -w <<<"$a") == $2)) && return 0
		sleep 0.2
	done
	echo "bench: service $1 announced by '${a:-}' after $3 s, want $2 host(s)" >&2
	return 1
}

# lb_failover D ADDR HOST: take HOST's link down while lbprobe watches
# ADDR:80 from the client; print the µs until the client is served again.
# The link comes back and HOST's announcer re-registers before it returns.
lb_failover() {
	local d=$1 addr=$2 h=$3 log t0 ok pid end
	log=$d/probe.$((++LB_RUN)).log
	bg "$log" nsenter --net="/run/netns/$CLIENT_NS" "$WORK/bin/lbprobe" -addr "$addr:80" -d 120s
	pid=$BG_PID
	end=$((SECONDS + 20))
	until grep -q '^ok ' "$log"; do ((SECONDS < end)) || { echo "bench: $addr never served before failover" >&2; kill_pid "$pid"; return 1; }; sleep 0.05; done
	t0=$(now_us)
	ip link set "$LAB_NAME-$h" down
	end=$((SECONDS + 60))
	ok=
	while ((SECONDS < end)); do
		ok=$(awk -v t0="$t0" '$1 == "fail" && $2 >= t0 { f = 1 } $1 == "ok" && f && $2 > t0 { print $2; exit }' "$log")
		[[ -n $ok ]] && break
		sleep 0.05
	done
	ip link set "$LAB_NAME-$h" up
	kill_pid "$pid"
	[[ -n $ok ]] || { echo "bench: $addr not served again within 60 s of $h's link going down: $(tail -n 3 "$log")" >&2; return 1; }
	echo $((ok - t0))
	# Settle: HOST back in etcd (its announcer record), sessions up again.
	end=$((SECONDS + 60))
	until pnctl 1 bgp -o json 2>/dev/null | grep -q "\"host\": \"$h\""; do ((SECONDS < end)) || break; sleep 0.2; done
}

bench_B18() {
	local n d=$WORK/B18 i addr h us done_=0 deadline bgpaddr via
	n=$(pairs B18 5 1)
	mkdir -p "$d"
	precheck B18
	lb_setup || return 1
	pnctl 1 service create b18 --selector app=b18 --port 80:8080 --type LoadBalancer --external-traffic-policy Local >/dev/null || return 1
	pnctl 1 service create b18bgp --selector app=b18 --port 80:8080 --load-balancer-ip "${LB_BGP_CIDR%.*}.18" \
		--external-traffic-policy Local >/dev/null || return 1
	addr=$("$WORK/bin/report" json loadBalancerIP <<<"$(pnctl 1 service get b18 -o json)") || return 1
	bgpaddr=${LB_BGP_CIDR%.*}.18
	deadline=$((SECONDS + 120 + 60 * n))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		lb_wait_announced b18 1 30 || return 1
		h=$(lb_announcers b18)
		us=$(lb_failover "$d" "$addr" "$h") || return 1
		echo "$us" >>"$d/l2.us"
		calc "$us / 30000000" >>"$d/R"
		lb_wait_route "$bgpaddr" 90 "$LAB_NET.11" "$LAB_NET.12" "$LAB_NET.13" || return 1
		# The host the client's flow goes to: its route's choice.
		via=$(ip -n "$CLIENT_NS" route get "$bgpaddr" | awk '{ for (i = 1; i < NF; i++) if ($i == "via") print $(i + 1) }')
		h=h$((${via##*.} - 10))
		us=$(lb_failover "$d" "$bgpaddr" "$h") || return 1
		echo "$us" >>"$d/bgp.us"
		calc "$us / ($LB_HOLD * 1000000)" >>"$d/Rbgp"
		done_=$((i + 1))
		say "B18 pair $done_/$n: L2 failover $(ms "$(tail -n 1 "$d/l2.us")") ms, BGP failover (hold ${LB_HOLD}s) $(ms "$us") ms"
	done
	pnctl 1 service rm b18 b18bgp >/dev/null || true
	local r rb note
	r=$(ratio_stats "$d/R" le)
	rb=$(ratio_stats "$d/Rbgp" le)
	awk '{ print $1 / 1000 }' "$d/l2.us" >"$d/l2.ms"
	awk '{ print $1 / 1000 }' "$d/bgp.us" >"$d/bgp.ms"
	note="$(deadline_note "$done_" "$n")$done_ pairs; the announcing host's LAN link down -> client served again (probe every 20 ms); announcer lease 3 s; $PRE_NOTE"
	row B18 "L2 failover vs liveness TTL" "failover $(field "$d/l2.ms" 2) ms (max $(field "$d/l2.ms" 4))" "liveness TTL 30000 ms" \
		"${r% *}" "${r#* }" le 0.167 1.1 "$note"
	note="$done_ pairs; the host the client's ECMP flow uses loses its link -> router withdraws it (hold timer) -> served by another host"
	row "B18 bgp" "BGP failover vs hold time" "failover $(field "$d/bgp.ms" 2) ms (max $(field "$d/bgp.ms" 4))" "hold time $((LB_HOLD * 1000)) ms" \
		"${rb% *}" "${rb#* }" le 1.333 2.0 "$note"
}

bench_B19() {
	local n d=$WORK/B19 i arm out line done_=0 deadline l2 bgp np pid srv
	declare -A rate=()
	n=$(pairs B19 5 1)
	mkdir -p "$d"
	: >"$d/errors"
	precheck B19
	lb_setup || return 1
	dkh 1 run -d --name b19 --net "$SVCLAB_NET" -l app=b19 "$IMG" sleep 3600 >/dev/null || return 1
	pid=$(ctr_pid_on 1 b19) || return 1
	bg "$d/server.log" nsenter --net="/proc/$pid/ns/net" taskset -c 1 "$WORK/bin/connrate" -serve 0.0.0.0:8080 -lifetime 1800s
	srv=$BG_PID
	wait_listen "/proc/$pid/ns/net" 8080 10 || return 1
	pnctl 1 service create b19 --selector app=b19 --port 80:8080 --type LoadBalancer --external-traffic-policy Local >/dev/null || return 1
	pnctl 1 service create b19bgp --selector app=b19 --port 80:8080 --load-balancer-ip "${LB_BGP_CIDR%.*}.19" \
		--external-traffic-policy Local >/dev/null || return 1
	out=$(pnctl 1 service get b19 -o json) || return 1
	l2=$("$WORK/bin/report" json loadBalancerIP <<<"$out")
	np=$("$WORK/bin/report" json ports.0.nodePort <<<"$out")
	bgp=${LB_BGP_CIDR%.*}.19
	lb_wait_announced b19 1 30 && lb_wait_route "$bgp" 60 "$LAB_NET.11" || return 1
	deadline=$((SECONDS + 60 + 40 * n))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" l2 bgp nodeport); do
			case $arm in
			l2) out=$(lb_connrate "$d" "$l2:80") ;;
			bgp) out=$(lb_connrate "$d" "$bgp:80") ;;
			nodeport) out=$(lb_connrate "$d" "$LAB_NET.11:$np") ;;
			esac || { echo "bench: B19 $arm arm failed" >&2; return 1; }
			rate[$arm]=$(kv rate "$out")
			echo "${rate[$arm]}" >>"$d/$arm"
			line+=" $arm $(kv rate "$out")/s"
		done
		calc "${rate[l2]} / ${rate[nodeport]}" >>"$d/R"
		calc "${rate[bgp]} / ${rate[nodeport]}" >>"$d/Rbgp"
		done_=$((i + 1))
		say "B19 pair $done_/$n:$line"
	done
	kill_pid "$srv"
	pnctl 1 service rm b19 b19bgp >/dev/null || true
	dkh 1 rm -f b19 >/dev/null || true
	local r rb note
	r=$(ratio_stats "$d/R" ge)
	rb=$(ratio_stats "$d/Rbgp" ge)
	note="$(deadline_note "$done_" "$n")$done_ pairs, $((QUICK ? 1 : 3)) s per arm, sequential connect+RST from the client netns; one endpoint on h1 (Local policy); anchor: the same service's NodePort on h1; $(cv_note "$d/nodeport" "nodeport"); $PRE_NOTE"
	row B19 "LB address (L2) conn/s vs NodePort" "l2 $(field "$d/l2" 2)/s" "nodeport $(field "$d/nodeport" 2)/s" \
		"${r% *}" "${r#* }" ge 0.97 0.90 "$note"
	row "B19 bgp" "LB address (BGP) conn/s vs NodePort" "bgp $(field "$d/bgp" 2)/s" "nodeport $(field "$d/nodeport" 2)/s" \
		"${rb% *}" "${rb#* }" ge 0.97 0.90 "routed by BIRD in the client netns (one route: via h1)"
}

# lb_connrate D ADDR: one connrate arm from the client netns.
lb_connrate() {
	local d=$1 secs out
	secs=$((QUICK ? 1 : 3))
	conntrack_settle
	out=$(timeout $((secs + 30)) nsenter --net="/run/netns/$CLIENT_NS" taskset -c 0 "$WORK/bin/connrate" -addr "$2" -d "${secs}s" -max 150000 2>"$d/err") ||
		{ cat "$d/err" >&2; return 1; }
	[[ -s $d/err ]] && sed 's/^/  /' "$d/err" >>"$d/errors"
	echo "$out"
}
