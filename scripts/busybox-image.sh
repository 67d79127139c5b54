#!/usr/bin/env bash
# Builds the test image podnet-test/busybox:latest (also tagged bb) with
# `docker import`, from Debian's busybox-static: no registry, no pulls.
#
#   scripts/busybox-image.sh [DOCKER_HOST]   # build and import the image
#   scripts/busybox-image.sh --tar FILE      # only write its root fs as a tar
#
# DOCKER_HOST defaults to $DOCKER_HOST, then to the client's default. The
# image holds /bin/busybox, a symlink per applet (busybox --list, except
# busybox itself), /etc/passwd, /etc/group and /tmp; its CMD is sh.
# Idempotent: does nothing when the image already exists (only re-adds the
# bb tag if it is missing).
#
# Env: DOCKER (docker CLI; default /usr/bin/docker when present), BUSYBOX
# (default /bin/busybox), NETCHECK (podnet's test tool, default bin/netcheck,
# added as /bin/netcheck when present), BUSYBOX_TAR (import this tar, made by --tar,
# instead of building one: the ~270 symlinks cost a second or two here).
#
# Note: busybox's `wget -T` segfaults on these machines; in containers use
# `timeout N wget -q -O - URL`.
set -euo pipefail

readonly IMAGE=podnet-test/busybox:latest
readonly SHORT_TAG=bb

usage() { sed -n '2,19s/^# \{0,1\}//p' "$0"; }

die() {
	echo "busybox-image: $*" >&2
	exit 1
}

default_docker() {
	if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; else command -v docker || echo docker; fi
}

# build_rootfs DIR: lay out the image's file system under DIR.
build_rootfs() {
	local root=$1 applet
	mkdir -p "$root"/{bin,etc,tmp,root}
	chmod 1777 "$root/tmp"
	install -m 0755 "$BUSYBOX" "$root/bin/busybox"
	while read -r applet; do
		# busybox --list names busybox itself: never symlink over the binary.
		[[ -n $applet && $applet != busybox ]] || continue
		ln -sf busybox "$root/bin/$applet"
	done < <("$BUSYBOX" --list)
	cat >"$root/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$root/etc/group" <<-'EOF'
		root:x:0:
		nogroup:x:65534:
	EOF
	# podnet's static test tool (make build puts it in bin/): UDP and TCP
	# servers that name their peers, which busybox-static lacks.
	if [[ -x $NETCHECK ]]; then
		install -m 0755 "$NETCHECK" "$root/bin/netcheck"
	fi
}

# write_tar FILE: the image's root fs as a tar in FILE.
write_tar() {
	local out=$1 tmp
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/podnet-busybox.XXXXXX")
	build_rootfs "$tmp/rootfs"
	tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$out.tmp" .
	mv "$out.tmp" "$out"
	rm -rf "$tmp"
}

main() {
	BUSYBOX=${BUSYBOX:-/bin/busybox}
	NETCHECK=${NETCHECK:-$(cd "$(dirname "$0")/.." && pwd)/bin/netcheck}
	[[ -x $BUSYBOX ]] || die "$BUSYBOX is missing: apt-get install busybox-static"
	case ${1:-} in
	-h | --help) usage; return 0 ;;
	--tar)
		[[ $# -eq 2 ]] || { usage >&2; return 2; }
		write_tar "$2"
		return 0
		;;
	esac
	[[ $# -le 1 ]] || { usage >&2; return 2; }
	if [[ -n ${1:-} ]]; then export DOCKER_HOST=$1; fi
	DOCKER=${DOCKER:-$(default_docker)}
	"$DOCKER" version --format '{{.Server.Version}}' >/dev/null ||
		die "no Docker daemon answers at ${DOCKER_HOST:-the default socket}"

	if "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
		"$DOCKER" image inspect "$SHORT_TAG" >/dev/null 2>&1 || "$DOCKER" tag "$IMAGE" "$SHORT_TAG"
		echo "busybox-image: $IMAGE already present${DOCKER_HOST:+ on $DOCKER_HOST}"
		return 0
	fi

	local tarball=${BUSYBOX_TAR:-}
	if [[ -z $tarball ]]; then
		tarball=$(mktemp "${TMPDIR:-/tmp}/podnet-busybox.XXXXXX.tar")
		# shellcheck disable=SC2064 # expand tarball now: it is local
		trap "rm -f '$tarball'" EXIT
		write_tar "$tarball"
	fi
	[[ -f $tarball ]] || die "BUSYBOX_TAR=$tarball does not exist (make it with --tar)"
	"$DOCKER" import --change 'CMD ["sh"]' --change 'ENV PATH=/bin:/usr/bin:/sbin:/usr/sbin' \
		"$tarball" "$IMAGE" >/dev/null
	"$DOCKER" tag "$IMAGE" "$SHORT_TAG"
	echo "busybox-image: imported $IMAGE (tag $SHORT_TAG)${DOCKER_HOST:+ on $DOCKER_HOST}"
}

main "$@"
