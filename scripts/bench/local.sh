# shellcheck shell=bash
# local.sh: the one-host container benchmarks of scripts/bench.sh (sourced
# by it; uses lib.sh): container start with and without -p, and the
# connection rate through a published port, on the one-host lab, podnet
# against Docker's own networks on the same host.
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
