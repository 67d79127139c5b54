# shellcheck shell=bash
# ipam.sh: the IPAM benchmark of scripts/bench.sh (sourced by it; uses
# lib.sh); needs no lab and runs while the one-host lab is up.
#
#   B12  TMPDIR=/dev/shm go test -run '^$' -bench B12 ./ipam/ (BenchmarkB12
#        and BenchmarkB12cChurn): affine IPAM vs the naive shared-key
#        allocator at 3 and 16 writers; B12c: leaked keys after churn.

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
