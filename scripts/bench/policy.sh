# shellcheck shell=bash
# policy.sh: the network policy benchmarks of scripts/bench.sh (sourced by
# it; uses lib.sh, svclab.sh's pnctl and the 3-host lab's network
# $SVCLAB_NET). bench/polbench compiles and programs policies with the
# code podnetd runs (packages policy, netpol, dataplane) and writes
# policy files.
#
#   B15  connection rate to a policy-selected endpoint (connrate: connect
#        + RST close, client and server in their own namespaces routed
#        through a "host" namespace $LAB_NAME-polh holding podnet's table,
#        forward path, 3 s per arm, client on CPU 0 and server on CPU 1)
#        with 1000 policies and 1000 labelled containers present (records
#        synthetic: polbench load compiles them; the server is selected by
#        one policy allowing the client, 49 other local endpoints by
#        theirs) vs the same endpoint with podnet's table and no policy.
#        Fresh namespaces per arm, arms alternate. Target >= 0.95, floor
#        >= 0.85. No lab.
#   B16  policy programming latency on the 3-host lab: a target container
#        on each host (netcheck id-server), a prober container on the
#        next host connecting to it every 5 ms (svcbench flip, 100 ms
#        connect timeout), all targets isolated by a deny-all policy and
#        1000 filler policies loaded; one sample is `podnetctl apply -f`
#        of a policy allowing the probers in (or `podnetctl delete -f` of
#        it), timed from just before the command to the last host's
#        probe flipping. p50 and p99 (target p99 <= 1 s, floor 3 s).
#        B16 peer: a new container's address reaching the other hosts'
#        allow lists: with the allow policy in place, a new prober on h1
#        (docker run -d) connects to the target on h2 every 10 ms (50 ms
#        connect timeout) from its first instant; the time to its first
#        connection (netcheck keep-trying) is how long its address took
#        to reach h2's rules (target p99 <= 1 s); denied until then.
#   B17  docker run --rm of a container a policy selects on h1 of the
#        3-host lab with 1000 policies present (filler policies plus the
#        one selecting it) vs with no policy: per pair, 5 runs of each arm
#        (median), the arm's policies applied before it and removed after
#        (podnetctl apply/delete -f, untimed), order alternating. Target
#        <= 1.05, floor <= 1.20.

readonly POL_H=$LAB_NAME-polh POL_C=$LAB_NAME-polc POL_S=$LAB_NAME-pols
readonly POL_NS=("$POL_H" "$POL_C" "$POL_S")
readonly POL_N=1000

polbench() { "$WORK/bin/polbench" "$@"; }

# pol_ns_up: the client (10.252.1.2) and server (10.252.2.2) namespaces,
# each behind a veth named like a podnet bridge port of the host namespace.
pol_ns_up() {
	local ns
	pol_ns_down
	for ns in "${POL_NS[@]}"; do ip netns add "$ns" || return 1; done
	ip -n "$POL_H" link add pn-polc type veth peer name eth0 netns "$POL_C" &&
		ip -n "$POL_H" link add pn-pols type veth peer name eth0 netns "$POL_S" || return 1
	ip -n "$POL_H" -batch - <<-EOF || return 1
		link set lo up
		addr add 10.252.1.1/24 dev pn-polc
		addr add 10.252.2.1/24 dev pn-pols
		link set pn-polc up
		link set pn-pols up
	EOF
	ip netns exec "$POL_H" sysctl -qw net.ipv4.ip_forward=1 || return 1
	for ns in "$POL_C:1" "$POL_S:2"; do
		ip -n "${ns%:*}" -batch - <<-EOF || return 1
			link set lo up
			addr add 10.252.${ns#*:}.2/24 dev eth0
			link set eth0 up
			route add default via 10.252.${ns#*:}.1
		EOF
	done
}

pol_ns_down() {
	local ns
	for ns in "${POL_NS[@]}"; do
		[[ -e /run/netns/$ns ]] && { ip netns del "$ns" 2>/dev/null || warn "cannot delete netns $ns"; }
	done
	return 0
}

# ---------------------------------------------------------------- B15

# b15_arm ARM DIR: one arm in fresh namespaces; appends the rate to
# DIR/ARM and prints it.
b15_arm() {
	local arm=$1 d=$2 n=0 out sp secs
	secs=$((QUICK ? 1 : 3))
	[[ $arm == policy ]] && n=$POL_N
	pol_ns_up || return 1
	bg "$d/server.log" ip netns exec "$POL_S" taskset -c 1 "$WORK/bin/connrate" -serve 0.0.0.0:80 -lifetime 120s
	sp=$BG_PID
	wait_listen "/run/netns/$POL_S" 80 10 || return 1
	ip netns exec "$POL_H" "$WORK/bin/polbench" load -n "$n" -server 10.252.2.2 -client 10.252.1.2 >>"$d/load.log" 2>&1 ||
		{ echo "bench: B15 $arm: polbench load failed (see $d/load.log)" >&2; return 1; }
	out=$(timeout $((secs + 30)) ip netns exec "$POL_C" taskset -c 0 "$WORK/bin/connrate" -addr 10.252.2.2:80 -d "${secs}s" -max 150000 2>>"$d/errors") ||
		{ echo "bench: B15 $arm: connrate failed" >&2; return 1; }
	kill_pid "$sp"
	wait "$sp" 2>/dev/null || true
	pol_ns_down
	kv rate "$out" | tee -a "$d/$arm"
}

bench_B15() {
	local n i arm line d="$WORK/B15" deadline done_=0 rs note
	declare -A t=()
	n=$(pairs B15 5 1)
	mkdir -p "$d"
	: >"$d/errors"
	precheck B15
	deadline=$((SECONDS + 120 + 40 * n))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" policy none); do
			t[$arm]=$(b15_arm "$arm" "$d") || return 1
			line+=" $arm ${t[$arm]}/s"
		done
		calc "${t[policy]} / ${t[none]}" "${t[none]}" >>"$d/R"
		done_=$((i + 1))
		say "B15 pair $done_/$n:$line"
	done
	rs=$(ratio_stats "$d/R" ge)
	note="$(deadline_note "$done_" "$n")$done_ pairs; connrate through the forward path of a namespace holding podnet's table: with $POL_N policies and $POL_N labelled containers (synthetic records, compiled and programmed by polbench load: $(grep -m1 -o 'programmed_ms=[0-9.]*' "$d/load.log" | cut -d= -f2) ms) vs with none; $(cv_note "$d/none" "no-policy arm"); $PRE_NOTE"
	row B15 "conn/s to a policy-selected endpoint, $POL_N policies" "policy $(fmt 0 "$(field "$d/policy" 2)")/s" \
		"none $(fmt 0 "$(field "$d/none" 2)")/s" "${rs% *}" "${rs#* }" ge 0.95 0.85 "$note"
}

# ---------------------------------------------------------------- B16/B17

# pol_fill: the filler policies (and, with an argument KEY=VALUE, one
# selecting it) in a file; prints its path.
pol_fill() {
	local f=$WORK/policies-fill${1:+-${1//[^a-z0-9]/}}.yaml
	[[ -s $f ]] || polbench policies -n "$POL_N" ${1:+-select "$1"} >"$f" || return 1
	echo "$f"
}

# pol_apply I FILE / pol_delete I FILE: podnetctl apply/delete -f on hI.
pol_apply() { pnctl "$1" apply -f "$2" >/dev/null; }
pol_delete() { pnctl "$1" delete -f "$2" >/dev/null; }

# pol_wait_agents N SECS: until every host's policy agent holds N policies.
pol_wait_agents() {
	local want=$1 end=$((SECONDS + $2)) i n
	for i in 1 2 3; do
		while :; do
			n=$("$WORK/bin/report" json policies <<<"$(pnctl "$i" policy agent -o json 2>/dev/null)" 2>/dev/null) || n=-1
			((n == want)) && break
			((SECONDS < end)) || { echo "bench: h$i's policy agent holds $n policies, want $want, after $2 s" >&2; return 1; }
			sleep 0.2
		done
	done
}

bench_B16() {
	local n d="$WORK/B16" i next pid ip probes="" f fill out note
	n=$(pairs B16 20 4)
	mkdir -p "$d"
	precheck B16
	for i in 1 2 3; do
		dkh "$i" run -d --name "b16-t$i" --network "$SVCLAB_NET" -l role=b16t "$IMG" netcheck id-server 80 b16t >/dev/null &&
			dkh "$i" run -d --name "b16-p$i" --network "$SVCLAB_NET" -l role=b16p "$IMG" sleep 1d >/dev/null || return 1
	done
	# Prober on hI probes the target on the next host.
	for i in 1 2 3; do
		next=$((i % 3 + 1))
		pid=$(ctr_pid_on "$i" "b16-p$i") && ip=$(ctr_ip_on "$next" "b16-t$next") || return 1
		probes+="${probes:+,}h$next=/proc/$pid/ns/net@$ip:80"
	done
	fill=$(pol_fill) || return 1
	printf -- '- kind: NetworkPolicy\n  name: b16-deny\n  podSelector: {matchLabels: {role: b16t}}\n' >"$d/deny.yaml"
	printf -- '- kind: NetworkPolicy\n  name: b16-allow\n  podSelector: {matchLabels: {role: b16t}}\n  ingress: [{from: [{podSelector: {matchLabels: {role: b16p}}}]}]\n' >"$d/allow.yaml"
	pol_apply 1 "$fill" && pol_apply 1 "$d/deny.yaml" && pol_wait_agents $((POL_N + 1)) 120 || return 1
	out=$d/flip.log
	if ! timeout 900 "$WORK/bin/svcbench" flip -kind cmd -probe "$probes" -vip "$ip:80" -samples "$n" -dial 100ms \
		-want-a timeout -want-b b16t -cmd-a "timeout 60 $REPO/bin/podnetctl --socket $LAB_DIR/h2/podnet.sock delete -f $d/allow.yaml" \
		-cmd-b "timeout 60 $REPO/bin/podnetctl --socket $LAB_DIR/h2/podnet.sock apply -f $d/allow.yaml" >"$out" 2>&1; then
		echo "bench: B16: svcbench flip failed: $(tail -n 3 "$out")" >&2
		return 1
	fi
	grep -o ' all_ms=[0-9.]*' "$out" | cut -d= -f2 >"$d/all.ms"
	grep ' failed:' "$out" | sed 's/.*/10000/' >>"$d/all.ms" || true
	grep 'to=b16t' "$out" | grep -o ' all_ms=[0-9.]*' | cut -d= -f2 >"$d/allow.ms" || true
	grep 'to=timeout' "$out" | grep -o ' all_ms=[0-9.]*' | cut -d= -f2 >"$d/deny.ms" || true
	say "B16: $(grep '^summary' "$out")"
	note="$(grep -c . "$d/all.ms") samples on the 3-host lab, $POL_N filler policies and a deny-all for the targets loaded; from just before podnetctl apply -f (allow: median $(fmt 1 "$(field "$d/allow.ms" 2)") ms) or delete -f (deny again: median $(fmt 1 "$(field "$d/deny.ms" 2)") ms, read up to 100 ms late: a dropped SYN is seen after the probe's connect timeout) to the last of the three hosts' probes flipping (a container on the next host probing each host's target every 5 ms)"
	grep -q ' failed:' "$out" && note+="; FLAG: $(grep -c ' failed:' "$out") samples not seen everywhere within 10 s (counted as 10 s)"
	note+="; $PRE_NOTE"
	row "B16 p50" "apply -f of one policy -> enforced on 3 hosts" "podnet p50 $(fmt 1 "$(field "$d/all.ms" 2)") ms" "-" \
		"$(field "$d/all.ms" 2)" "max $(fmt 1 "$(field "$d/all.ms" 4)") ms" le - - "$note" ms
	row "B16 p99" "apply -f of one policy -> enforced on 3 hosts, p99" "podnet p99 $(fmt 1 "$(pctl "$d/all.ms" 99)") ms" "-" \
		"$(pctl "$d/all.ms" 99)" "max $(fmt 1 "$(field "$d/all.ms" 4)") ms" le 1000 3000 "p99 by nearest rank (with fewer than 100 samples: the maximum)" ms
	b16_peer "$d" "$n" || return 1
	pol_delete 1 "$d/deny.yaml"
	pol_delete 1 "$fill"
	for i in 1 2 3; do dkh "$i" rm -f "b16-t$i" "b16-p$i" >/dev/null; done
}

# b16_peer D N: N new probers on h1 (the allow policy applied), each
# timing its first connection to h2's target from its own first instant.
b16_peer() {
	local d=$1 n=$2 k t2 out ms
	t2=$(ctr_ip_on 2 b16-t2) || return 1
	pol_apply 2 "$d/allow.yaml" || return 1
	: >"$d/peer.ms"
	for ((k = 0; k < n; k++)); do
		dkh 1 run -d --name "b16-n$k" --network "$SVCLAB_NET" -l role=b16p "$IMG" netcheck keep-trying "$t2:80" 4 50 >/dev/null || return 1
		dkh 1 wait "b16-n$k" >/dev/null || return 1
		out=$(dkh 1 logs "b16-n$k" 2>&1)
		dkh 1 rm -f "b16-n$k" >/dev/null
		ms=$(awk '{ for (i = 1; i < NF; i++) if ($i == "first") print $(i + 1) }' <<<"$out")
		[[ $ms =~ ^[0-9]+$ ]] || ms=10000 # never connected within 4 s
		echo "$ms" >>"$d/peer.ms"
	done
	say "B16 peer: first connection after $(paste -sd' ' "$d/peer.ms") ms"
	row "B16 peer" "new container's address -> other hosts' allow lists, p99" \
		"podnet p99 $(fmt 0 "$(pctl "$d/peer.ms" 99)") ms" "-" "$(pctl "$d/peer.ms" 99)" "median $(fmt 0 "$(field "$d/peer.ms" 2)") ms" \
		le 1000 3000 "$n new containers on h1 allowed into a container on h2 by a policy in place: from the new container's first instant to its first connection (netcheck keep-trying: every 10 ms, 50 ms connect timeout; denied until h2's rules hold its address: the watcher's etcd write, h2's watch, h2's agent); p99 by nearest rank" ms
	pol_delete 2 "$d/allow.yaml"
}

# b17_runs ARM D K: K docker run --rm of the selected container on h1;
# appends their median (µs) to D/ARM and prints it.
b17_runs() {
	local arm=$1 d=$2 k=$3 j us
	: >"$d/runs"
	for ((j = 0; j < k; j++)); do
		us=$(time_us dkh 1 run --rm --network "$SVCLAB_NET" -l role=b17 "$IMG" true) || return 1
		echo "$us" >>"$d/runs"
	done
	us=$(field "$d/runs" 2)
	echo "$us" >>"$d/$arm"
	echo "$us"
}

bench_B17() {
	local n k i arm line d="$WORK/B17" f deadline done_=0 rs note
	declare -A t=()
	n=$(pairs B17 5 1)
	k=$((QUICK ? 3 : 5))
	mkdir -p "$d"
	precheck B17
	f=$(pol_fill role=b17) || return 1
	dkh 1 run --rm --network "$SVCLAB_NET" "$IMG" true >/dev/null || return 1
	deadline=$((SECONDS + 300 + 120 * n))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" policies none); do
			if [[ $arm == policies ]]; then pol_apply 1 "$f" && pol_wait_agents $((POL_N + 1)) 120 || return 1; fi
			t[$arm]=$(b17_runs "$arm" "$d" "$k") || return 1
			if [[ $arm == policies ]]; then pol_delete 1 "$f" && pol_wait_agents 0 120 || return 1; fi
			line+=" $arm $(ms "${t[$arm]}") ms"
		done
		calc "${t[policies]} / ${t[none]}" "${t[none]}" >>"$d/R"
		done_=$((i + 1))
		say "B17 pair $done_/$n:$line"
	done
	rs=$(ratio_stats "$d/R" le)
	note="$(deadline_note "$done_" "$n")$done_ pairs of $k runs each (medians); docker run --rm --network $SVCLAB_NET -l role=b17 IMG true on h1 of the 3-host lab, with $POL_N filler policies and one selecting role=b17 applied (podnetctl apply -f, untimed; every host's agent holds them) vs none; $(cv_note "$d/none" "no-policy arm"); $PRE_NOTE"
	row B17 "docker run of a policy-selected container, $POL_N policies" "policies $(fmt 1 "$(calc "$(field "$d/policies" 2) / 1000")") ms" \
		"none $(fmt 1 "$(calc "$(field "$d/none" 2) / 1000")") ms" "${rs% *}" "${rs#* }" le 1.05 1.20 "$note"
}
