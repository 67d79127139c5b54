#!/usr/bin/env bash
# vm.sh: run podnet's tests on Debian 12's stock kernel in a throwaway QEMU
# guest, for kernel features the machine's own kernel may lack (ipvlan).
#
# usage: scripts/vm.sh COMMAND [ARGS]
#   kernel                   build the cached kernel + network modules (once)
#   root                     build the cached Debian root with dockerd (once)
#   run BINARY [ARGS...]     run a static binary as root in a busybox guest;
#                            exit with its status (125: the guest gave none)
#   kernel-tests             the driver's ipvlan and the WireGuard device's
#                            kernel tests, in the guest (each skipped when
#                            this kernel has the feature: they ran natively
#                            with the other kernel tests)
#   e2e                      dockerd + podnetd in a guest booted from the
#                            Debian root: test/vm/ipvlan-e2e.sh
#   bench                    the same guest running test/vm/ipvlan-bench.sh
#                            (benchmark B11i; BENCH_VM_PAIRS, BENCH_VM_SECS)
#   wireguard-e2e            three podnet hosts (namespaces, one etcd) in the
#                            Docker guest: test/vm/wireguard-e2e.sh
#   wireguard-bench          two of them running test/vm/wireguard-bench.sh
#                            (benchmark B21; BENCH_VM_PAIRS, BENCH_VM_SECS)
#   clean                    remove the cache
#
# The kernel package is `apt-get download`ed and unpacked into the cache,
# never installed. The Docker root is made by debootstrap from the mirror
# apt already uses. Both are cached in $PODNET_VM_CACHE (default
# /var/cache/podnet-vm) and rebuilt only when missing. The guest has no
# network to the outside: tests build their "LAN" from veth pairs and
# namespaces inside it. KVM is used when /dev/kvm is real KVM; otherwise
# (and under PVM, which cannot boot Debian's kernel) TCG emulation: slower,
# so tests poll with deadlines and never assume timings.
#
# Env: PODNET_VM_CACHE, VM_TIMEOUT (seconds, default 600), VM_MEM (MiB,
#   busybox guest 512, Docker guest 2048), VM_ACCEL (auto|kvm|tcg),
#   VM_KPKG (kernel package; default what linux-image-amd64 depends on),
#   VM_MIRROR (debootstrap mirror; default the first of apt's sources)
# Needs (scripts/deps.sh installs them): qemu-system-x86 busybox-static
#   debootstrap, plus Go for kernel-tests and e2e.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
CACHE=${PODNET_VM_CACHE:-/var/cache/podnet-vm}
readonly CACHE
readonly SUITE=bookworm
# Network modules preloaded in every guest (others autoload through
# busybox modprobe).
readonly PRELOAD="ipvlan macvlan 8021q dummy veth bridge vxlan nf_tables wireguard"
# The Docker guest's packages; the cached root is named after the list, so
# changing it builds a new one.
readonly ROOT_PKGS=docker.io,iptables,iproute2,nftables,ca-certificates,procps,iperf3,etcd-server,etcd-client,tcpdump,wireguard-tools
ROOT_CPIO=$CACHE/root-$(echo "$ROOT_PKGS" | md5sum | cut -c1-8).cpio
readonly ROOT_CPIO

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
log() { echo "vm: $*" >&2; }
die() {
	echo "vm: error: $*" >&2
	exit 1
}

need() {
	local c
	for c in "$@"; do command -v "$c" >/dev/null || die "$c not found: run scripts/deps.sh"; done
}

# lock: one builder of the cache at a time (two test runs may start together).
lock() {
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
}

# ---------------------------------------------------------------- kernel

kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ && !n++ {print $2}'; }

# kernel: $CACHE/vmlinux (ELF, booted through PVH: no BIOS, no real-mode
# setup, no xz in TCG) and $CACHE/mods.cpio.gz (net, drivers/net, crypto
# and overlayfs modules with everything they depend on).
kernel() {
	[[ -f $CACHE/mods.cpio.gz && -f $CACHE/vmlinux && -f $CACHE/kver ]] && return 0
	need apt-get apt-cache dpkg-deb xz busybox
	lock
	[[ -f $CACHE/mods.cpio.gz && -f $CACHE/vmlinux && -f $CACHE/kver ]] && return 0
	local kpkg tmp kver off
	kpkg=${VM_KPKG:-$(kernel_package)}
	if [[ -z $kpkg ]]; then # no package lists yet (a fresh machine)
		apt-get update -qq >/dev/null || die "apt-get update failed: the kernel package cannot be found"
		kpkg=$(kernel_package)
	fi
	[[ -n $kpkg ]] || die "cannot tell which kernel package linux-image-amd64 depends on (set VM_KPKG)"
	log "building the kernel cache from $kpkg (once)"
	tmp=$(mktemp -d "$CACHE/kbuild.XXXXXX")
	# shellcheck disable=SC2064 # expand now: the path is fixed
	trap "rm -rf '$tmp'" RETURN
	(cd "$tmp" && apt-get download "$kpkg" >/dev/null)
	dpkg-deb -x "$tmp"/"$kpkg"_*.deb "$tmp/k"
	kver=$(ls "$tmp/k/lib/modules")
	off=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$tmp/k/boot/vmlinuz-$kver" | cut -d: -f1 | sed -n 1p)
	[[ -n $off ]] || die "no xz payload in vmlinuz-$kver"
	xz -dc --single-stream < <(tail -c +$((off + 1)) "$tmp/k/boot/vmlinuz-$kver") >"$tmp/vmlinux"
	busybox depmod -b "$tmp/k" "$kver"
	# modules.dep lines list a module and everything it needs, transitively.
	(cd "$tmp/k/lib/modules/$kver" &&
		awk -F'[: ]+' '$1 ~ /^kernel\/(net|drivers\/net|crypto|arch\/x86\/crypto|fs\/overlayfs)\// &&
			$1 !~ /\/(wireless|ethernet|usb|can|wwan|ieee802154|bluetooth|mac80211|nfc|sunrpc|ceph|rxrpc|rds|smc|9p|atm|batman-adv|tipc|hyperv)\/|thunderbolt/ {
			for (i = 1; i <= NF; i++) if ($i != "") print $i }' modules.dep |
		sort -u | while read -r m; do
			mkdir -p "$tmp/m/lib/modules/$kver/${m%/*}"
			cp "$m" "$tmp/m/lib/modules/$kver/$m"
		done)
	busybox depmod -b "$tmp/m" "$kver"
	(cd "$tmp/m" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$tmp/mods.cpio.gz"
	mv "$tmp/vmlinux" "$CACHE/vmlinux"
	mv "$tmp/mods.cpio.gz" "$CACHE/mods.cpio.gz"
	echo "$kver" >"$CACHE/kver"
	log "kernel $kver cached in $CACHE"
}

# ---------------------------------------------------------------- root

mirror() {
	if [[ -n ${VM_MIRROR:-} ]]; then
		echo "$VM_MIRROR"
		return
	fi
	local m
	m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[[ -n $m ]] || m=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit} $1 == "deb" && $2 ~ /^\[/ {print $3; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[[ -n $m ]] || die "no Debian mirror in apt's sources: set VM_MIRROR"
	echo "$m"
}

# root: $ROOT_CPIO, a Debian root with dockerd and iproute2, packed
# as an uncompressed initramfs (the guest runs from RAM: runc cannot
# pivot_root out of an initramfs, hence DOCKER_RAMDISK in the guest).
root() {
	[[ -f $ROOT_CPIO ]] && return 0
	need debootstrap busybox
	kernel
	lock
	[[ -f $ROOT_CPIO ]] && return 0
	local tmp r
	tmp=$(mktemp -d "$CACHE/rbuild.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	r=$tmp/root
	log "building the Docker guest root with debootstrap (once; about a minute)"
	debootstrap --variant=minbase --include="$ROOT_PKGS" \
		"$SUITE" "$r" "$(mirror)" >"$tmp/debootstrap.log" 2>&1 ||
		{ tail -20 "$tmp/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
	rm -rf "$r"/usr/share/{doc,man,locale,info} "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
	cp /bin/busybox "$r/bin/busybox"
	# busybox's modprobe reads the plain modules.dep of the cached subset.
	ln -sf /bin/busybox "$r/sbin/modprobe"
	(cd "$r" && zcat "$CACHE/mods.cpio.gz" | busybox cpio -id 2>/dev/null)
	(cd "$r" && find . | busybox cpio -o -H newc 2>/dev/null) >"$tmp/root.cpio"
	rm -f "$CACHE"/root*.cpio # older package lists
	mv "$tmp/root.cpio" "$ROOT_CPIO"
	log "Docker guest root cached in $ROOT_CPIO ($(du -m "$ROOT_CPIO" | cut -f1) MiB)"
}

# ---------------------------------------------------------------- boot

# boot MEM CPUS INITRD...: boot the cached kernel with the concatenated
# initramfs archives; stream the console; exit with the guest's status.
# Guests get one vCPU: under TCG on a busy host, two vCPU threads starve
# each other (a vCPU spinning on a lock the other holds while descheduled:
# soft lockups, seen here).
boot() {
	local mem=$1 cpus=$2
	shift 2
	local work=$1
	shift
	cat "$@" >"$work/initrd"
	local accel=(-accel tcg -cpu max)
	if [[ ${VM_ACCEL:-auto} == kvm ]] || { [[ ${VM_ACCEL:-auto} == auto ]] &&
		[[ -w /dev/kvm && ! -d /sys/module/kvm_pvm ]]; }; then accel=(-accel kvm -cpu host); fi
	need qemu-system-x86_64
	set +e
	timeout "${VM_TIMEOUT:-600}" qemu-system-x86_64 "${accel[@]}" -m "$mem" -smp "$cpus" \
		-nodefaults -no-user-config -display none -serial stdio -no-reboot \
		-kernel "$CACHE/vmlinux" -initrd "$work/initrd" \
		-append "console=ttyS0 quiet panic=-1" </dev/null | sed -u 's/\r$//' | tee "$work/console.log"
	set -e
	local rc
	rc=$(sed -n 's/^VMTEST-EXIT=\([0-9]*\)$/\1/p' "$work/console.log" | tail -1)
	[[ -n $rc ]] || { log "no exit status from the guest (timeout or crash)"; return 125; }
	return "$rc"
}

# common_init: the first lines of every guest's /init.
common_init() {
	cat <<EOF
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs shm /dev/shm
mount -t tmpfs tmp /tmp; mount -t tmpfs run /run; [ -e /var/run ] || ln -s /run /var/run
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ip link set lo up
for m in $PRELOAD; do modprobe \$m 2>/dev/null || echo "vm: modprobe \$m failed"; done
echo "vm: kernel \$(uname -r), up \$(cut -d' ' -f1 /proc/uptime)s"
EOF
}

# pack DIR OUT: DIR as a gzipped newc archive.
pack() { (cd "$1" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$2"; }

run() {
	[[ $# -ge 1 ]] || die "usage: vm.sh run BINARY [ARGS...]"
	local bin
	bin=$(realpath "$1")
	shift
	[[ -x $bin ]] || die "$bin is not an executable"
	kernel
	local work r a
	work=$(mktemp -d "$CACHE/run.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	r=$work/root
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,test,var}
	cp /bin/busybox "$r/bin/busybox"
	for a in $(busybox --list-full); do [[ -e $r/$a ]] || ln -s /bin/busybox "$r/$a"; done
	cp "$bin" "$r/test/"
	for a in "$@"; do printf "'%s' " "$(printf %s "$a" | sed "s/'/'\\\\''/g")"; done >"$r/test/args"
	{
		echo '#!/bin/busybox sh'
		common_init
		cat <<EOF
hostname podnet-vm
cd /test; eval "set -- \$(cat /test/args)"
"/test/$(basename "$bin")" "\$@"
echo "VMTEST-EXIT=\$?"
poweroff -f
EOF
	} >"$r/init"
	chmod +x "$r/init"
	pack "$r" "$work/run.cpio.gz"
	boot "${VM_MEM:-512}" 1 "$work" "$CACHE/mods.cpio.gz" "$work/run.cpio.gz"
}

# ---------------------------------------------------------------- tests

# host_has KIND: this kernel creates links of KIND (ipvlan on a veth).
host_has() {
	local ns=podnet-vmprobe-$$ ok=1 kind=$1
	ip netns add "$ns" 2>/dev/null || return 1
	if [[ $kind == ipvlan ]]; then
		ip -n "$ns" link add p0 type veth peer name p1 2>/dev/null &&
			ip -n "$ns" link add v0 link p0 type ipvlan mode l2 2>/dev/null && ok=0
	elif ip -n "$ns" link add v0 type "$kind" 2>/dev/null; then
		ok=0
	fi
	ip netns del "$ns"
	return $ok
}

# kernel_tests: the kernel tests this kernel cannot run natively (each
# skipped, naming the missing feature, in the native run), on Debian's.
kernel_tests() {
	need go
	local out
	out=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$out'" RETURN
	if host_has ipvlan; then
		log "this kernel has ipvlan: the ipvlan kernel tests ran natively with the other kernel tests"
	else
		(cd "$REPO" && CGO_ENABLED=0 go test -c -o "$out/driver.test" ./driver)
		log "running the ipvlan kernel tests on Debian's kernel in a QEMU guest"
		(run "$out/driver.test" -test.v -test.count=1 -test.run 'IPVlan|VLANParent|Isolated' -test.timeout 5m)
	fi
	if host_has wireguard; then
		log "this kernel has WireGuard: the WireGuard kernel tests ran natively with the other kernel tests"
	else
		(cd "$REPO" && CGO_ENABLED=0 go test -c -o "$out/wireguard.test" ./overlay/wireguard)
		log "running the WireGuard kernel tests on Debian's kernel in a QEMU guest"
		(run "$out/wireguard.test" -test.v -test.count=1 -test.run 'WireGuard' -test.timeout 5m)
	fi
}

# guest SCRIPT: dockerd + podnetd's binaries and the test image in a guest
# booted from the Debian root, running SCRIPT (from test/vm) as the test;
# BENCH_VM_* variables are passed in.
guest() {
	local script=$1
	need go
	root
	local work r
	work=$(mktemp -d "$CACHE/e2e.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	r=$work/root
	mkdir -p "$r/podnet/bin" "$r/podnet/image/bin"
	local b
	for b in cmd/podnetd cmd/podnetctl test/netcheck bench/connrate; do
		(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$r/podnet/bin/${b##*/}" "./$b")
	done
	# The test image: busybox plus netcheck, imported in the guest, with
	# an /etc/passwd for httpd -h /etc to serve.
	mkdir -p "$r/podnet/image/etc"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$r/podnet/image/etc/passwd"
	cp /bin/busybox "$r/podnet/image/bin/busybox"
	cp "$r/podnet/bin/netcheck" "$r/podnet/image/bin/netcheck"
	for a in sh ping ip sleep nc httpd wget cat echo true; do ln -s busybox "$r/podnet/image/bin/$a"; done
	tar -C "$r/podnet/image" -cf "$r/podnet/image.tar" .
	rm -rf "$r/podnet/image"
	cp "$REPO"/test/vm/*.sh "$r/podnet/"
	env | grep '^BENCH_VM_' | sed "s/=\(.*\)/='\1'/; s/^/export /" >"$r/podnet/env" || true
	{
		echo '#!/bin/sh'
		common_init
		cat <<'EOF'
mkdir -p /var/lib/docker; mount -t tmpfs docker /var/lib/docker
hostname podnet-vm
cd /podnet
. /podnet/env
sh /podnet/SCENARIO
echo "VMTEST-EXIT=$?"
busybox poweroff -f
EOF
	} >"$r/init"
	sed -i "s|/podnet/SCENARIO|/podnet/$script|" "$r/init"
	chmod +x "$r/init"
	pack "$r" "$work/run.cpio.gz"
	log "booting the Docker guest (dockerd + podnetd on Debian's kernel)"
	VM_TIMEOUT=${VM_TIMEOUT:-900} boot "${VM_MEM:-2048}" 1 "$work" "$ROOT_CPIO" "$work/run.cpio.gz"
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	kernel) kernel ;;
	root) root ;;
	run) run "$@" ;;
	kernel-tests) kernel_tests ;;
	e2e) guest ipvlan-e2e.sh ;;
	bench) guest ipvlan-bench.sh ;;
	# Three hosts under emulation: 8-13 minutes on a busy 2-core machine.
	wireguard-e2e) VM_MEM=${VM_MEM:-3072} VM_TIMEOUT=${VM_TIMEOUT:-1800} guest wireguard-e2e.sh ;;
	wireguard-bench) VM_MEM=${VM_MEM:-3072} VM_TIMEOUT=${VM_TIMEOUT:-1800} guest wireguard-bench.sh ;;
	clean) rm -rf "$CACHE" ;;
	-h | --help | "") usage ;;
	*) usage >&2; exit 2 ;;
	esac
}

main "$@"
