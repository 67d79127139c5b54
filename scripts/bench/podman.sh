# shellcheck shell=bash
# podman.sh: the CNI benchmark of scripts/bench.sh (sourced by it; uses
# lib.sh), on the one-host lab: podman 4 with its CNI backend on the lab's
# host h1 (scripts/lab.sh podman describes its configuration), podnet's
# CNI plugin against podman's own.
#
#   B20  podman run --rm IMG true on the podnet network $PN_NET (the
#        conflist podnetctl cni-config prints, CNI 1.0.0) vs podman's own
#        default network (CNI bridge, portmap, firewall and tuning
#        plugins), interleaved pairs (the first arm alternates), after one
#        warm-up run per arm. podman runs in h1's namespaces as
#        scripts/lab.sh podman runs it, without that script's own start-up
#        in the timed command. R = T(podnet)/T(podman bridge).

readonly B20_IMG=localhost/podnet-test/busybox:latest

# pm ARGS...: podman on h1, in its namespaces and with its configuration
# (what scripts/lab.sh podman h1 runs; `run` gets the lab's cgroup parent).
pm() {
	local p=$LAB_DIR/h1/podman
	if [[ ${1:-} == run ]]; then set -- run --cgroup-parent "/$LAB_NAME-h1" "${@:2}"; fi
	nsenter --mount="$LAB_DIR/ns/h1.mnt" --net="/run/netns/$LAB_NAME-h1" -- \
		env CONTAINERS_CONF="$p/containers.conf" CONTAINERS_STORAGE_CONF="$p/storage.conf" TMPDIR="$p/tmp" \
		timeout "${DK_TIMEOUT:-120}" podman "$@"
}

# b20_setup: podman's configuration on h1, the test image and the
# conflist of the podnet network.
b20_setup() {
	"$LAB" podman h1 info >/dev/null || return 1
	pm image exists "$B20_IMG" || pm import -q "$LAB_DIR/busybox.tar" "$B20_IMG" >/dev/null || return 1
	"$LAB" exec h1 podnetctl cni-config "$PN_NET" --cni-version 1.0.0 >"$LAB_DIR/h1/podman/net.d/$PN_NET.conflist" || return 1
}

b20_net() {
	case $1 in
	podnet) echo "$PN_NET" ;;
	bridge) echo podman ;;
	*) return 1 ;;
	esac
}

bench_B20() {
	command -v podman >/dev/null || { echo "bench: B20: podman is missing (scripts/deps.sh)" >&2; return 1; }
	local n budget deadline i arm us line done_=0 d="$WORK/B20"
	declare -A t=()
	n=$(pairs B20 20 3)
	budget=$((60 + 6 * n))
	mkdir -p "$d"
	b20_setup || { echo "bench: B20: podman setup on h1 failed" >&2; return 1; }
	precheck B20
	for arm in podnet bridge; do
		time_us pm run --rm --network "$(b20_net "$arm")" "$B20_IMG" true >/dev/null || return 1
	done
	deadline=$((SECONDS + budget))
	for ((i = 0; i < n && SECONDS < deadline; i++)); do
		line=
		for arm in $(rotate "$i" podnet bridge); do
			us=$(time_us pm run --rm --network "$(b20_net "$arm")" "$B20_IMG" true) || return 1
			t[$arm]=$us
			printf '%s\n' "$(ms "$us")" >>"$d/$arm"
			line+=" $arm $(ms "$us") ms"
		done
		calc "${t[podnet]} / ${t[bridge]}" >>"$d/R"
		done_=$((i + 1))
		say "B20 pair $done_/$n:$line -> ratio $(tail -n 1 "$d/R")"
	done
	local rs note
	rs=$(ratio_stats "$d/R" le)
	note="$(deadline_note "$done_" "$n")$done_ pairs; anchor = podman's default CNI bridge network; $(cv_note "$d/bridge" "bridge"); $PRE_NOTE"
	row B20 "podman run --rm true (CNI)" "podnet $(fmt 1 "$(field "$d/podnet" 2)") ms" "podman bridge $(fmt 1 "$(field "$d/bridge" 2)") ms" \
		"${rs% *}" "${rs#* }" le 1.05 1.20 "$note"
}
