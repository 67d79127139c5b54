# shellcheck shell=bash
# encryption.sh: encryption between hosts, benchmark B21 of
# scripts/bench.sh (sourced by it; uses lib.sh), in the QEMU guest.
#
#   B21  encryption between hosts, in the QEMU guest on Debian's kernel
#        (scripts/vm.sh wireguard-bench, test/vm/wireguard-bench.sh): two
#        podnet hosts with --encryption wireguard, a container on each on
#        a vxlan network; anchor: a hand-built WireGuard tunnel between the
#        same two host namespaces routing two "container" netns behind a
#        bridge each. Rows: B21 TCP throughput (iperf3, 1 stream) and B21c
#        connection rate (bench/connrate, connect + RST close), podnet /
#        hand-built, target 0.95, floor 0.85; B21v: hand-built VXLAN inside
#        WireGuard / hand-built WireGuard (context: the layering podnet did
#        not choose). Needs no lab.

# bench_B21: encryption in the QEMU guest (scripts/vm.sh wireguard-bench);
# per pair the guest prints "B21 tput PODNET WG VXWG" (bits/s) and "B21
# conn PODNET WG VXWG" (connections/s).
bench_B21() {
	local n d="$WORK/B21" line secs=$((QUICK ? 3 : 8))
	n=$(pairs B21 5 1)
	mkdir -p "$d"
	precheck B21
	BENCH_VM_PAIRS=$n BENCH_VM_SECS=$secs "$REPO/scripts/vm.sh" wireguard-bench >"$d/console.log" 2>&1 ||
		{ tail -30 "$d/console.log" >&2; return 1; }
	while read -r _ kind p w v; do
		case $kind in
		tput) calc "$p / $w" >>"$d/Rt" && calc "$v / $w" >>"$d/Rvt" && calc "$p / 1e6" >>"$d/pn.mbps" &&
			calc "$w / 1e6" >>"$d/wg.mbps" && calc "$v / 1e6" >>"$d/vx.mbps" ;;
		conn) calc "$p / $w" >>"$d/Rc" && calc "$v / $w" >>"$d/Rvc" && echo "$p" >>"$d/pn.conn" && echo "$w" >>"$d/wg.conn" &&
			echo "$v" >>"$d/vx.conn" ;;
		esac
	done < <(grep '^B21 ' "$d/console.log")
	[[ -s $d/Rt && -s $d/Rc ]] || { echo "bench: B21: no samples from the guest" >&2; tail -30 "$d/console.log" >&2; return 1; }
	local note="$(grep -c . "$d/Rt") pairs in the QEMU guest (emulated CPU: absolute figures mean nothing), Debian's kernel, arms rotated; $PRE_NOTE"
	line=$(ratio_stats "$d/Rt" ge)
	row B21 "encrypted cross-host TCP throughput (QEMU guest)" "podnet $(fmt 0 "$(field "$d/pn.mbps" 2)") Mbit/s" \
		"hand-built WireGuard $(fmt 0 "$(field "$d/wg.mbps" 2)") Mbit/s" "${line% *}" "${line#* }" ge 0.95 0.85 "iperf3 $secs s, 1 stream; $note"
	line=$(ratio_stats "$d/Rc" ge)
	row B21c "encrypted cross-host TCP connection rate (QEMU guest)" "podnet $(fmt 0 "$(field "$d/pn.conn" 2)")/s" \
		"hand-built WireGuard $(fmt 0 "$(field "$d/wg.conn" 2)")/s" "${line% *}" "${line#* }" ge 0.95 0.85 "connect + RST close, $secs s; $note"
	line=$(ratio_stats "$d/Rvt" ge)
	row B21v "VXLAN inside WireGuard, throughput (layering not chosen)" "vxlan-in-wg $(fmt 0 "$(field "$d/vx.mbps" 2)") Mbit/s" \
		"hand-built WireGuard $(fmt 0 "$(field "$d/wg.mbps" 2)") Mbit/s" "${line% *}" "${line#* }" ge - - \
		"context; connection rate ratio $(ratio_stats "$d/Rvc" ge | cut -d' ' -f1)"
}
