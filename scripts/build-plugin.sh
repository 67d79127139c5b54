#!/usr/bin/env bash
# Builds podnet's managed (v2) Docker plugin directory: config.json plus a
# rootfs holding podnetd and everything it executes (iptables, both
# backends, with their libraries and extensions).
#
#   scripts/build-plugin.sh DIR              # assemble DIR/{config.json,rootfs}
#   scripts/build-plugin.sh --install DIR    # and docker plugin create/enable podnet:latest
#
#   scripts/build-plugin.sh --push DIR       # assemble, create as $PLUGIN_NAME,
#                                            # docker plugin push, remove the local copy
#
# Env: PLUGIN_NAME (default podnet:latest; for --push a registry name such
# as registry.example.com/podnet:1.2.0), PODNET_BIN (directory of the
# podnetd and podnetctl to package, default <repo>/bin), DOCKER (docker CLI).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
install=false push=false
case ${1:-} in
--install) install=true; shift ;;
--push) push=true; shift ;;
esac
dir=${1:?usage: build-plugin.sh [--install|--push] DIR}
bin=${PODNET_BIN:-$repo/bin}
name=${PLUGIN_NAME:-podnet:latest}
docker=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}

die() { echo "build-plugin: $*" >&2; exit 1; }

[[ -x $bin/podnetd ]] || die "$bin/podnetd is missing: run make build first"

# copy_with_libs FILE: copy FILE and the shared libraries it links into rootfs.
copy_with_libs() {
	local f=$1
	install -D -m 0755 "$f" "$rootfs$f"
	ldd "$f" 2>/dev/null | awk '/=>/ {print $3} /^\t\// {print $1}' | while read -r lib; do
		[[ -n $lib && -e $lib ]] || continue
		[[ -e $rootfs$lib ]] || install -D -m 0755 "$lib" "$rootfs$lib"
	done
}

rm -rf "$dir"
rootfs=$dir/rootfs
# The host's /var/lib and /run are mounted (config.json: lib, run) rather
# than /var/lib/podnet and /run/podnet: a bind source must exist, and on a
# fresh host, or after a reboot empties /run, podnet's own do not. podnetd
# makes them itself.
mkdir -p "$rootfs"/{usr/bin,usr/sbin,run/docker/plugins,var/lib,host/run,host/proc/sys,tmp,etc,proc,sys,dev}
install -m 0755 "$bin/podnetd" "$rootfs/usr/bin/podnetd"
install -m 0755 "$bin/podnetctl" "$rootfs/usr/bin/podnetctl"

# iptables: the multi-call binaries of both backends, their applet links,
# and the extension modules they dlopen.
for b in /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi; do
	[[ -x $b ]] || die "$b is missing: apt-get install iptables"
	copy_with_libs "$b"
done
for l in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
	ln -sf xtables-nft-multi "$rootfs/usr/sbin/$l"
	ln -sf xtables-nft-multi "$rootfs/usr/sbin/$l-nft"
	ln -sf xtables-legacy-multi "$rootfs/usr/sbin/$l-legacy"
done
xt=$(dirname "$(find /usr/lib -path '*xtables/libxt_standard.so' | head -n1)")
[[ -d $xt ]] || die "iptables extensions directory not found"
mkdir -p "$rootfs$xt"
cp -a "$xt/." "$rootfs$xt/"
for so in "$xt"/*.so; do copy_with_libs "$so"; done
# iptables-legacy takes a lock under /run; nft reads /etc/ethertypes etc.
[[ -f /etc/ethertypes ]] && cp /etc/ethertypes "$rootfs/etc/"
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
cp "$repo/plugin/config.json" "$dir/config.json"
echo "plugin directory ready: $dir ($(du -sh "$rootfs" | cut -f1))"

if $install; then
	if "$docker" plugin inspect "$name" >/dev/null 2>&1; then
		"$docker" plugin disable -f "$name" >/dev/null 2>&1 || true
		"$docker" plugin rm -f "$name" >/dev/null
	fi
	"$docker" plugin create "$name" "$dir"
	"$docker" plugin enable "$name"
	echo "installed and enabled $name: docker network create -d $name --ipam-driver $name ..."
fi

if $push; then
	# A plugin is pushed from a local copy of that name; the build host
	# keeps none afterwards (an install of the same name would collide).
	if "$docker" plugin inspect "$name" >/dev/null 2>&1; then
		die "a plugin named $name exists here already: docker plugin rm it first"
	fi
	"$docker" plugin create "$name" "$dir"
	trap '"$docker" plugin rm -f "$name" >/dev/null 2>&1 || true' EXIT
	"$docker" plugin push "$name"
	echo "pushed $name: on each host, docker plugin install --grant-all-permissions $name PODNET_ETCD_ENDPOINTS=..."
fi
