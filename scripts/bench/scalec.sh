# shellcheck shell=bash
# scalec.sh: containers at cluster scale (scripts/bench.sh, sourced by it;
# uses lib.sh). It runs the e2e measurement TestFakeContainersScale, which
# brings up its own 3-host lab (LAB_NAME, LAB_DIR, LAB_NET: none of the
# bench's labs is up then) and adds stand-in hosts to its etcd:
#
#   SCALEC  BENCH_SCALEC_HOSTS (5000) stand-in hosts x BENCH_SCALEC_CONTAINERS
#        (100) containers each (test/fakehosts: endpoint metadata, the
#        cluster DNS's name index, and for one container in 50 the
#        selection index of a service selecting 10: 1000 services), then on
#        h1's real podnetd: the etcd keys and bytes its watches receive per
#        container start on h2 (nothing selects it / a service selects
#        it), its RSS and heap in use, the cluster DNS's first and cached
#        lookups of 200 stand-in names (p50, p99), and the time from a
#        `docker rm -f` on h2 to its name failing on h1. Absolute figures
#        (one run): the counts do not depend on load, the times do.

# scalec_val FILE KEY: the value the test reported for KEY.
scalec_val() { awk -v k="$2" '$2 == "SCALEC" && $3 == k { print $4 }' "$1" | tail -1; }

bench_SCALEC() {
	local d="$WORK/SCALEC" out rc=0 hosts=${BENCH_SCALEC_HOSTS:-5000} per=${BENCH_SCALEC_CONTAINERS:-100} size v note
	mkdir -p "$d"
	out="$d/go-test.out"
	precheck SCALEC
	size="${hosts}x$per"
	say "SCALEC: PODNET_E2E_FAKE_HOSTS=$hosts PODNET_E2E_FAKE_CONTAINERS=$per go test -tags e2e -run TestFakeContainersScale ./e2e/"
	(cd "$REPO" && PODNET_E2E_FAKE_HOSTS=$hosts PODNET_E2E_FAKE_CONTAINERS=$per timeout 4800 \
		go test -tags e2e -count=1 -timeout 80m -v -run '^TestFakeContainersScale$' ./e2e/) >"$out" 2>&1 || rc=$?
	sed -n 's/^ *scalec_test.go:[0-9]*: //p; /^--- /p' "$out" | sed 's/^/  /' || true
	v=$(scalec_val "$out" start_unselected_bytes)
	note="absolute; $(scalec_val "$out" containers) containers on $(scalec_val "$out" hosts) stand-in hosts in the lab's etcd, $(scalec_val "$out" services) services; mean of 5 starts; every watch of h1's podnetd (podnet_etcd_watch_bytes_total); $PRE_NOTE"
	if [[ -n $v ]]; then
		row "SCALE $size unselected start" "$size: etcd bytes into another host per container start nothing selects" "$(fmt 0 "$v") B ($(scalec_val "$out" start_unselected_keys) keys)" \
			"none (absolute)" "$v" "-" le 0 - "$note" B
		v=$(scalec_val "$out" start_selected_bytes)
		row "SCALE $size selected start" "$size: etcd bytes into another host per container start a service selects" "$(fmt 0 "$v") B ($(scalec_val "$out" start_selected_keys) keys)" \
			"none (absolute)" "$v" "-" le 1024 - "$note; its selection index entry (sel/ep/), as small as its metadata" B
		v=$(scalec_val "$out" rss_mib)
		row "SCALE $size rss" "$size: podnetd resident memory (RSS) on a real host" "$v MiB (heap in use $(scalec_val "$out" heap_inuse_mib) MiB)" \
			"before the stand-ins $(scalec_val "$out" rss_before_mib) MiB" "$v" "-" le 150 - \
			"absolute; h1's podnetd with the overlay of every stand-in host, the catalog of every selected container, its DNS; heap in use before: $(scalec_val "$out" heap_inuse_before_mib) MiB" MiB
		v=$(scalec_val "$out" heap_inuse_mib)
		row "SCALE $size heap" "$size: podnetd heap in use (DNS, catalog and the rest)" "$v MiB" "before the stand-ins $(scalec_val "$out" heap_inuse_before_mib) MiB" \
			"$v" "-" le 50 - "absolute; go_memstats_heap_inuse_bytes of h1's podnetd, everything in it (an upper bound of what DNS and the catalog hold)" MiB
		v=$(scalec_val "$out" dns_first_p99_us)
		row "SCALE $size dns first" "$size: cluster DNS, first lookup of a remote name (an etcd read and a watch)" \
			"p50 $(scalec_val "$out" dns_first_p50_us) us, p99 $v us" "none (absolute)" "$v" "-" le - - \
			"absolute; 200 stand-in names asked once each from h1's namespace (netcheck dns-times); load-dependent" us
		v=$(scalec_val "$out" dns_cached_p99_us)
		row "SCALE $size dns cached" "$size: cluster DNS, cached lookup" \
			"p50 $(scalec_val "$out" dns_cached_p50_us) us, p99 $v us" "none (absolute)" "$v" "-" le - - \
			"absolute; the same 200 names asked 20 times more; load-dependent" us
		v=$(scalec_val "$out" gone_after_rm_start_s)
		row "SCALE $size name gone" "$size: from docker rm -f on another host to its name failing" "$(fmt 3 "$v") s" \
			"docker rm -f took $(fmt 3 "$(scalec_val "$out" rm_s)") s" "$v" "-" le 1 - \
			"absolute; h1 asks every millisecond (a cached name, so the watch's delete is what ends it)" s
	else
		error_row "SCALE $size" "$size: containers at scale" le - - "no result (go test exit $rc: see $out)"
	fi
	((rc == 0)) || return 1
}
